/**
 * The engine ↔ worker channel: calls, errors with their codes, byte streams with credits, early
 * cancellation. A loopback pair of endpoints delivers messages asynchronously, like Node's IPC.
 */
import test from 'ava';
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { LadingError } from '../../src/errors.ts';
import { decompressLayer } from '../../src/layer/decompress.ts';
import { Peer, type Endpoint, type Message } from '../../src/run/ipc.ts';
import { REPO_ROOT } from '../helpers/busybox.ts';
import { file, rawTar } from './helpers/raw-tar.ts';

function loopback(): [Endpoint, Endpoint, { inFlight: () => number }] {
  const a = new EventEmitter();
  const b = new EventEmitter();
  let inFlight = 0;
  const sender = (to: EventEmitter) => (m: Message) => {
    inFlight++;
    const copy = structuredClone(m);
    setImmediate(() => {
      inFlight--;
      to.emit('message', copy);
    });
    return true;
  };
  const ea = Object.assign(a, { send: sender(b), connected: true }) as unknown as Endpoint;
  const eb = Object.assign(b, { send: sender(a), connected: true }) as unknown as Endpoint;
  return [ea, eb, { inFlight: () => inFlight }];
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('calls return values and LadingErrors keep their code, hint and details', async (t) => {
  const [ea, eb] = loopback();
  const main = new Peer(ea, 1);
  const worker = new Peer(eb, 1e9);
  worker.handle('add', async ([x, y]) => (x as number) + (y as number));
  worker.handle('fail', async () => {
    throw new LadingError('RUN_FAILED', 'exit 3', { hint: 'look', details: { exitCode: 3 } });
  });
  t.is(await main.call('add', [2, 3]), 5);
  const err = (await t.throwsAsync(main.call('fail', []))) as LadingError;
  t.true(err instanceof LadingError);
  t.is(err.code, 'RUN_FAILED');
  t.is(err.hint, 'look');
  t.deepEqual(err.details, { exitCode: 3 });
});

test('streams arrive whole and in order, through decompression too (many small gzip blobs)', async (t) => {
  const [ea, eb] = loopback();
  const main = new Peer(ea, 1);
  const worker = new Peer(eb, 1e9);
  worker.handle('digest', async ([id, gz]) => {
    let s: Readable = worker.receiveStream(id as number);
    if (gz) s = await decompressLayer(s);
    const h = createHash('sha256');
    for await (const c of s) h.update(c as Buffer);
    return h.digest('hex');
  });
  const data = randomBytes(90_000);
  const blob = gzipSync(data);
  for (let i = 0; i < 100; i++) {
    const id = main.newStreamId();
    const asked = main.call('digest', [id, true]);
    const sent = main.sendStream(id, Readable.from([blob.subarray(0, 64 * 1024), blob.subarray(64 * 1024)]));
    const [digest] = await Promise.all([asked, sent]);
    t.is(digest, sha(data));
  }
});

test('a slow reader holds the sender back (at most a window of chunks in flight)', async (t) => {
  const [ea, eb, stats] = loopback();
  const main = new Peer(ea, 1);
  const worker = new Peer(eb, 1e9);
  let peak = 0;
  worker.handle('slow', async ([id]) => {
    let n = 0;
    for await (const c of worker.receiveStream(id as number)) {
      n += (c as Buffer).length;
      peak = Math.max(peak, stats.inFlight());
      await new Promise((r) => setTimeout(r, 2));
    }
    return n;
  });
  const id = main.newStreamId();
  const asked = main.call('slow', [id]);
  const sent = main.sendStream(id, Readable.from([Buffer.alloc(16 * 1024 * 1024)]));
  const [n] = await Promise.all([asked, sent]);
  t.is(n, 16 * 1024 * 1024);
  t.true(peak <= 20, `at most ${peak} messages were in flight`);
});

test('a reader that gives up cancels the sender, which destroys its source', async (t) => {
  const [ea, eb] = loopback();
  const main = new Peer(ea, 1);
  const worker = new Peer(eb, 1e9);
  worker.handle('first', async ([id]) => {
    const s = worker.receiveStream(id as number);
    for await (const c of s) return (c as Buffer).length;
    return 0;
  });
  let destroyed = false;
  const source = new Readable({
    read() {
      this.push(Buffer.alloc(256 * 1024));
    },
    destroy(err, cb) {
      destroyed = true;
      cb(err);
    },
  });
  const id = main.newStreamId();
  const [n] = await Promise.all([main.call('first', [id]), main.sendStream(id, source)]);
  t.is(n, 256 * 1024);
  t.true(destroyed);
});

test('a failing source fails the receiver with its error', async (t) => {
  const [ea, eb] = loopback();
  const main = new Peer(ea, 1);
  const worker = new Peer(eb, 1e9);
  worker.handle('drain', async ([id]) => {
    for await (const _ of worker.receiveStream(id as number)) {
      // drain
    }
    return 'done';
  });
  const source = new Readable({
    read() {
      this.destroy(new LadingError('DIGEST_MISMATCH', 'bad blob'));
    },
  });
  const id = main.newStreamId();
  const asked = main.call('drain', [id]);
  void main.sendStream(id, source);
  const err = (await t.throwsAsync(asked)) as LadingError;
  t.is(err.code, 'DIGEST_MISMATCH');
});

test('over real Node IPC: hundreds of small gzip layers decompress whole (a race once truncated ~1%)', async (t) => {
  const child = fork(path.join(REPO_ROOT, 'test/run/helpers/ipc-child.ts'), [], { serialization: 'advanced', execArgv: ['--import', 'tsx'], cwd: REPO_ROOT });
  t.teardown(() => child.kill());
  // ChildProcess is an IPC endpoint when forked; Node types it loosely.
  const main = new Peer(child as unknown as Endpoint, 1);
  const tar = rawTar(Array.from({ length: 3000 }, (_, i) => file(`d${i % 30}/f${i}`, `file ${i}\n`)));
  const blob = gzipSync(tar);
  const want = sha(tar);
  let bad = 0;
  for (let i = 0; i < 400; i++) {
    const id = main.newStreamId();
    const asked = main.call('digest', [id, true]);
    const sent = main.sendStream(id, Readable.from([blob.subarray(0, 65536), blob.subarray(65536)]));
    try {
      const [digest] = await Promise.all([asked, sent]);
      if (digest !== want) bad++;
    } catch {
      bad++;
    }
  }
  t.is(bad, 0);
});
