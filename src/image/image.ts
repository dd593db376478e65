/**
 * An image as every other folder sees it: its manifest, its config, and a way to read its blobs.
 * Like go-containerregistry's v1.Image, it is a small read-only interface; `mutate.ts` is the one
 * place new images are made from old ones.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.ts';

/** Reads blobs by digest, verifying them. The store, a registry and an OCI folder all provide one. */
export interface BlobSource {
  /** Stream a blob; the stream fails if the bytes do not match `desc.digest`. */
  open(desc: Descriptor): Promise<Readable>;
  /** The whole blob, verified (for small JSON documents). */
  read(desc: Descriptor): Promise<Buffer>;
  /**
   * Registry repositories known to hold a blob, so a push to the same registry can mount it
   * instead of moving its bytes.
   */
  origins?(digest: string): { registry: string; repository: string }[];
  /**
   * Put the blob in `file` without streaming it through the process, when this source can vouch
   * for it (a blob the local store wrote in this run). False when it cannot: use `open`.
   */
  copyTo?(desc: Descriptor, file: string): Promise<boolean>;
}

export interface Image {
  /** The image manifest. */
  readonly manifest: Manifest;
  /** The exact bytes the digest names; never re-serialise a manifest you did not make. */
  readonly manifestBytes: Buffer;
  /** `sha256:` digest of `manifestBytes`: what a tag or `@digest` names. */
  readonly digest: string;
  /** The image config. */
  readonly config: ImageConfig;
  /** The exact bytes of the config blob. */
  readonly configBytes: Buffer;
  /** Where the layer blobs can be read. */
  readonly blobs: BlobSource;
}

export interface ImageIndex {
  /** The index (a Docker manifest list with `format: docker`). */
  readonly index: Index;
  /** The exact bytes the digest names. */
  readonly indexBytes: Buffer;
  /** `sha256:` digest of `indexBytes`. */
  readonly digest: string;
  /** The images the index lists, in its order. */
  readonly images: Image[];
}

export function descriptorOf(img: Image): Descriptor {
  const desc: Descriptor = {
    mediaType: img.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
    digest: img.digest,
    size: img.manifestBytes.length,
  };
  const platform = platformOf(img.config);
  if (platform) desc.platform = platform;
  return desc;
}

export function platformOf(config: ImageConfig): Descriptor['platform'] {
  if (!config.os || !config.architecture) return undefined;
  const p: NonNullable<Descriptor['platform']> = { architecture: config.architecture, os: config.os };
  if (config.variant) p.variant = config.variant;
  if (config['os.version']) p['os.version'] = config['os.version'];
  return p;
}
