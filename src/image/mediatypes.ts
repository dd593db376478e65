/** OCI and Docker media types, and the mapping between the two formats. */

export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  OCI_LAYOUT_HEADER: 'application/vnd.oci.layout.header.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DOCKER_LAYER_FOREIGN: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type Compression = 'gzip' | 'zstd' | 'none';
export type ImageFormat = 'oci' | 'docker';

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_MANIFEST_LIST;
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
}

/** The compression a layer media type declares, or undefined for a non-layer type. */
export function layerCompression(mt: string): Compression | undefined {
  switch (mt) {
    case MediaType.OCI_LAYER:
      return 'none';
    case MediaType.OCI_LAYER_GZIP:
    case MediaType.DOCKER_LAYER_GZIP:
    case MediaType.DOCKER_LAYER_FOREIGN:
      return 'gzip';
    case MediaType.OCI_LAYER_ZSTD:
    case MediaType.DOCKER_LAYER_ZSTD:
      return 'zstd';
    default:
      // Non-distributable OCI layers and future variants share the suffix convention.
      if (mt.startsWith('application/vnd.oci.image.layer.')) {
        if (mt.endsWith('+gzip')) return 'gzip';
        if (mt.endsWith('+zstd')) return 'zstd';
        return 'none';
      }
      return undefined;
  }
}

export function layerMediaType(format: ImageFormat, compression: Compression): string {
  if (format === 'docker') {
    if (compression === 'zstd') return MediaType.DOCKER_LAYER_ZSTD;
    // Docker schema 2 has no uncompressed layer type of its own; every reader accepts the OCI one.
    if (compression === 'none') return MediaType.OCI_LAYER;
    return MediaType.DOCKER_LAYER_GZIP;
  }
  if (compression === 'zstd') return MediaType.OCI_LAYER_ZSTD;
  if (compression === 'none') return MediaType.OCI_LAYER;
  return MediaType.OCI_LAYER_GZIP;
}

export function manifestMediaType(format: ImageFormat): string {
  return format === 'docker' ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST;
}

export function indexMediaType(format: ImageFormat): string {
  return format === 'docker' ? MediaType.DOCKER_MANIFEST_LIST : MediaType.OCI_INDEX;
}

export function configMediaType(format: ImageFormat): string {
  return format === 'docker' ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG;
}

/** Re-label a layer media type for another format, keeping its compression. */
export function convertLayerMediaType(mt: string, format: ImageFormat): string {
  const compression = layerCompression(mt);
  return compression === undefined ? mt : layerMediaType(format, compression);
}
