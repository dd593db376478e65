/** The far end of the real-IPC test: hashes streams it receives, optionally through decompressLayer. */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decompressLayer } from '../../../src/layer/decompress.ts';
import { Peer, type Endpoint } from '../../../src/run/ipc.ts';

// process is an IPC endpoint here (forked with an ipc channel); Node types it loosely.
const peer = new Peer(process as unknown as Endpoint, 1e9);
peer.handle('digest', async ([id, gz]) => {
  let s: Readable = peer.receiveStream(id as number);
  if (gz) s = await decompressLayer(s);
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
});
process.on('disconnect', () => process.exit(0));
