/**
 * An OCI archive: the OCI image layout (oci-layout, index.json, blobs/) as one tar file, what
 * `skopeo ... oci-archive:FILE` and `buildx --output type=oci` produce.
 */
import { digestHex } from '../image/digest.ts';
import type { Image, ImageIndex } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import type { Descriptor, Index } from '../image/types.ts';
import { writeArchive, type ArchiveWriter } from './archive.ts';
import { REF_NAME_ANNOTATION, layoutDescriptor, type LayoutEntry } from './oci-layout.ts';

const blobName = (digest: string): string => `blobs/sha256/${digestHex(digest)}`;

async function addImage(w: ArchiveWriter, img: Image): Promise<void> {
  for (const layer of img.manifest.layers) await w.addBlob(blobName(layer.digest), layer, img.blobs);
  await w.addBytes(blobName(img.manifest.config.digest), img.configBytes);
  await w.addBytes(blobName(img.digest), img.manifestBytes);
}

export async function writeOciArchive(file: string, entries: LayoutEntry[]): Promise<void> {
  await writeArchive(file, async (w) => {
    await w.addBytes('oci-layout', canonicalBytes({ imageLayoutVersion: '1.0.0' }));
    const manifests: Descriptor[] = [];
    for (const entry of entries) {
      const item: Image | ImageIndex = entry.item;
      if ('index' in item) {
        for (const img of item.images) await addImage(w, img);
        await w.addBytes(blobName(item.digest), item.indexBytes);
      } else await addImage(w, item);
      const desc = layoutDescriptor(item);
      if (entry.refName) desc.annotations = { ...(desc.annotations ?? {}), [REF_NAME_ANNOTATION]: entry.refName };
      manifests.push(desc);
    }
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
    await w.addBytes('index.json', canonicalBytes(index));
  });
}
