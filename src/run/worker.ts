/**
 * The rootfs worker: a child process started inside the namespaces the chosen sandbox needs (a
 * private mount namespace as root; a user namespace mapping the caller to root when rootless), so
 * that it can mount overlays, chown and remove what steps created. The engine talks to it through
 * `Rootfs` (index.ts); it serves one RootfsCore.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { RootfsCore, type CoreConfig, type RunRequest } from './core.ts';
import { Peer, type Endpoint } from './ipc.ts';

// process is an IPC endpoint here (started with an 'ipc' stdio slot); Node types it more loosely.
const peer = new Peer(process as unknown as Endpoint, 1_000_000_000);
let core: RootfsCore | undefined;

function current(): RootfsCore {
  if (!core) throw new LadingError(ERROR_CODES.INTERNAL, 'the rootfs worker is not initialised');
  return core;
}

peer.handle('init', async ([config]) => {
  core = await RootfsCore.open(config as CoreConfig);
  return { snapshot: core.snapshot, uid: process.getuid?.(), gid: process.getgid?.() };
});

peer.handle('addLayer', async ([streamId], ctx) => current().addLayer(peer.receiveStream(streamId as number), ctx.signal));

peer.handle('run', async ([request], ctx) =>
  current().run(request as RunRequest, {
    signal: ctx.signal,
    onOutput: (chunk, stream) => ctx.emit('output', { chunk, stream }),
  }),
);

peer.handle('path', async () => current().path());

/** Stream a file the engine's process may not read itself (it belongs to a subordinate id). */
peer.handle('read', async ([file, streamId]) => {
  const root = path.resolve(current().config.dir);
  const abs = path.resolve(String(file));
  if (!abs.startsWith(`${root}/`)) throw new LadingError(ERROR_CODES.INTERNAL, `refusing to read ${abs}: outside the rootfs folder`);
  const input = fs.createReadStream(abs);
  await new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  void peer.sendStream(streamId as number, input);
  return null;
});

peer.handle('dispose', async () => {
  const c = core;
  core = undefined;
  await c?.dispose();
  return null;
});

async function shutdown(): Promise<void> {
  const c = core;
  core = undefined;
  try {
    await c?.dispose();
  } finally {
    process.exit(0);
  }
}

// The engine went away (crash, kill): remove our files; our mounts die with our namespace.
process.on('disconnect', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
