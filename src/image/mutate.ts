/**
 * The one place images are made: from a config and layers to a manifest with exact bytes and a
 * digest. Everything here is pure; blobs are only referred to, never read.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import { sha256 } from './digest.ts';
import { descriptorOf, type BlobSource, type Image, type ImageIndex } from './image.ts';
import { canonicalBytes } from './json.ts';
import { configMediaType, convertLayerMediaType, indexMediaType, manifestMediaType, type ImageFormat } from './mediatypes.ts';
import type { Descriptor, ImageConfig, Index, LayerDescriptor, Manifest } from './types.ts';

export interface AssembleOptions {
  config: ImageConfig;
  layers: LayerDescriptor[];
  format?: ImageFormat;
  /** Manifest-level annotations (OCI only; Docker schema 2 has none). */
  annotations?: Record<string, string>;
  blobs: BlobSource;
}

/** An Image whose config and layer list are exactly the ones given. */
export function assembleImage(options: AssembleOptions): Image & { layers: LayerDescriptor[] } {
  const format = options.format ?? 'oci';
  const diffIDs = options.layers.map((l) => l.diffID);
  const config: ImageConfig = { ...options.config, rootfs: { type: 'layers', diff_ids: diffIDs } };
  const nonEmptyHistory = (config.history ?? []).filter((h) => !h.empty_layer).length;
  if (config.history && config.history.length > 0 && nonEmptyHistory !== diffIDs.length) {
    throw new LadingError(
      ERROR_CODES.INTERNAL,
      `image history lists ${nonEmptyHistory} layers but the image has ${diffIDs.length}`,
    );
  }
  const configBytes = canonicalBytes(config);
  const configDesc: Descriptor = { mediaType: configMediaType(format), digest: sha256(configBytes), size: configBytes.length };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType(format),
    config: configDesc,
    layers: options.layers.map((l) => layerDescriptor(l, format)),
  };
  if (format === 'oci' && options.annotations && Object.keys(options.annotations).length > 0) {
    manifest.annotations = { ...options.annotations };
  }
  const manifestBytes = canonicalBytes(manifest);
  return {
    manifest,
    manifestBytes,
    digest: sha256(manifestBytes),
    config,
    configBytes,
    blobs: options.blobs,
    layers: options.layers,
  };
}

function layerDescriptor(l: LayerDescriptor, format: ImageFormat): Descriptor {
  const d: Descriptor = { mediaType: convertLayerMediaType(l.mediaType, format), digest: l.digest, size: l.size };
  if (l.urls) d.urls = l.urls;
  if (l.annotations && format === 'oci') d.annotations = l.annotations;
  return d;
}

/** The layers of an image with their diffIDs, pairing manifest layers with config diff_ids. */
export function layersOf(img: Image): LayerDescriptor[] {
  const diffIDs = img.config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== img.manifest.layers.length) {
    throw new LadingError(
      ERROR_CODES.IMAGE,
      `image ${img.digest} is inconsistent: ${img.manifest.layers.length} layers but ${diffIDs.length} diff_ids in its config`,
    );
  }
  return img.manifest.layers.map((d, i) => ({ ...d, diffID: diffIDs[i]! }));
}

export interface AssembleIndexOptions {
  images: Image[];
  format?: ImageFormat;
  /** Index-level annotations (OCI only). */
  annotations?: Record<string, string>;
}

/** One index over images of several platforms, in the order given. */
export function assembleIndex(options: AssembleIndexOptions): ImageIndex {
  const format = options.format ?? 'oci';
  const manifests = options.images.map((img) => {
    const desc = descriptorOf(img);
    if (!desc.platform) throw new LadingError(ERROR_CODES.INTERNAL, `image ${img.digest} has no platform to list in an index`);
    return desc;
  });
  const index: Index = { schemaVersion: 2, mediaType: indexMediaType(format), manifests };
  if (format === 'oci' && options.annotations && Object.keys(options.annotations).length > 0) index.annotations = { ...options.annotations };
  const indexBytes = canonicalBytes(index);
  return { index, indexBytes, digest: sha256(indexBytes), images: options.images };
}
