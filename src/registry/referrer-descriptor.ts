/** How an index (or the referrers API) lists a referrer manifest. Pure: no network code. */
import { sha256 } from '../image/digest.ts';
import { MediaType } from '../image/mediatypes.ts';
import type { Descriptor, Manifest } from '../image/types.ts';

/** What the referrers index lists for a referrer manifest: its type, annotations, and size. */
export function referrerDescriptor(manifest: Manifest, bytes: Buffer): Descriptor {
  const desc: Descriptor = { mediaType: manifest.mediaType ?? MediaType.OCI_MANIFEST, digest: sha256(bytes), size: bytes.length };
  const artifactType = manifest.artifactType ?? manifest.config.mediaType;
  if (artifactType) desc.artifactType = artifactType;
  if (manifest.annotations && Object.keys(manifest.annotations).length > 0) desc.annotations = { ...manifest.annotations };
  return desc;
}
