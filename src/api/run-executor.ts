/** RUN through run/'s Rootfs: one sandboxed root file system per stage that runs steps. */
import fs from 'node:fs/promises';
import type { RunExecutor } from '../engine/run-executor.ts';
import { Rootfs, type SandboxKind } from '../run/index.ts';

/**
 * `workRoot` makes the folder a session works in; it must be one the store's clean-up knows is
 * in use (a pid-named temporary folder), or another build opening the store would remove it.
 */
export function rootfsExecutor(workRoot: () => Promise<string>, sandbox?: SandboxKind): RunExecutor {
  return {
    session: async () => {
      const dir = await workRoot();
      let root: Rootfs;
      try {
        root = await Rootfs.create(dir, sandbox ? { sandbox } : {});
      } catch (err) {
        await fs.rm(dir, { recursive: true, force: true });
        throw err;
      }
      return {
        description: `${root.sandbox} (${root.snapshot} snapshots)`,
        addLayer: (layer) => root.addLayer(layer),
        run: (spec) => root.run(spec),
        dispose: async () => {
          await root.dispose();
          await fs.rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
