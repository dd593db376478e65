/**
 * Registry to registry: the source's manifests are read, and each blob streams from the source's
 * GET straight into the destination's upload, never touching disk. On the same registry the blobs
 * are mounted instead (the source repository is every blob's origin), so nothing moves at all.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { Image, ImageIndex } from '../image/image.ts';
import { isIndexMediaType } from '../image/mediatypes.ts';
import type { ImageConfig, Index, Manifest } from '../image/types.ts';
import { limiter } from './limit.ts';
import type { PlatformSpec } from './platform.ts';
import { fetchManifest, readBlobBytes, resolveImage, RegistryBlobSource, type Repo } from './pull.ts';
import type { ImageReference } from './reference.ts';
import type { Transport } from './transport.ts';

export interface CopyOptions {
  /** Copy every image of an index, and the index itself (default: only the chosen platform). */
  allPlatforms?: boolean;
  platform?: PlatformSpec;
}

/** The source as an Image or ImageIndex whose blobs stream from its registry. */
export async function remoteItem(t: Transport, src: ImageReference, options: CopyOptions): Promise<Image | ImageIndex> {
  const repo: Repo = { registry: src.registry, repository: src.repository };
  const blobs = new RegistryBlobSource(t, repo);
  const root = await fetchManifest(t, repo, src.identifier);
  const isIndex = isIndexMediaType(root.mediaType) || 'manifests' in root.doc;
  if (isIndex && options.allPlatforms) {
    const index = root.doc as Index;
    const limit = limiter(4);
    const images = await Promise.all(
      index.manifests.map((desc) =>
        limit(async () => {
          const child = await fetchManifest(t, repo, desc.digest);
          if ('manifests' in child.doc) {
            throw new LadingError(ERROR_CODES.IMAGE, `${src.toString()} nests an index (${desc.digest}); copying nested indexes is not supported`);
          }
          const manifest = child.doc as Manifest;
          const configBytes = await readBlobBytes(t, repo, manifest.config);
          return { manifest, manifestBytes: child.bytes, digest: child.digest, config: JSON.parse(configBytes.toString('utf8')) as ImageConfig, configBytes, blobs } satisfies Image;
        }),
      ),
    );
    return { index, indexBytes: root.bytes, digest: root.digest, images } satisfies ImageIndex;
  }
  const resolved = await resolveImage(t, src, options.platform);
  return {
    manifest: resolved.manifest,
    manifestBytes: resolved.manifestBytes,
    digest: resolved.descriptor.digest,
    config: resolved.config,
    configBytes: resolved.configBytes,
    blobs,
  };
}
