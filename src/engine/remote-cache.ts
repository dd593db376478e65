/** What the engine needs from a shared cache; api/remote-cache.ts provides it over a registry. */
import type { BlobSource } from '../image/image.ts';
import type { LayerDescriptor } from '../image/types.ts';

export interface RemoteHit {
  /** The layer the step made, or null when it made none. */
  layer: LayerDescriptor | null;
  /** Where the layer's bytes are (read lazily, only if the build needs them). */
  blobs: BlobSource;
}

export interface RemoteCache {
  lookup(key: string): Promise<RemoteHit | undefined>;
}

/** A step the build knows the result of, for --cache-to. */
export interface CacheExportEntry {
  key: string;
  layer: LayerDescriptor | null;
  /** The stage it belongs to, and whether that stage is part of the final image's chain. */
  stage: number;
  inFinalImage: boolean;
}
