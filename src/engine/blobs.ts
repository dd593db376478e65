/** A BlobSource over several others: the store first, then wherever base images live. */
import type { BlobSource } from '../image/image.ts';
import type { Descriptor } from '../image/types.ts';
import type { BlobStore } from '../store/blob-store.ts';

export function layeredBlobSource(store: BlobStore, fallbacks: Map<string, BlobSource>): BlobSource {
  const pick = async (desc: Descriptor): Promise<BlobSource | undefined> =>
    (await store.has(desc.digest)) ? undefined : fallbacks.get(desc.digest);
  const source: BlobSource = {
    open: async (desc) => {
      const other = await pick(desc);
      return other ? other.open(desc) : store.openRead(desc.digest);
    },
    read: async (desc) => {
      const other = await pick(desc);
      return other ? other.read(desc) : store.readBytes(desc.digest);
    },
    copyTo: async (desc, file) => ((await pick(desc)) ? false : store.copyOut(desc.digest, file)),
  };
  const withOrigins = [...fallbacks.values()].some((s) => s.origins);
  if (withOrigins) {
    source.origins = (digest: string) => fallbacks.get(digest)?.origins?.(digest) ?? [];
  }
  return source;
}
