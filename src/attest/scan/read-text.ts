/** Reading a metadata file's body with a ceiling, so one hostile file cannot fill memory. */
import type { Readable } from 'node:stream';

/** Per-kind ceilings, far above any real file of that kind. */
export const LIMITS = {
  /** dpkg status of a very large image is a few MB. */
  database: 64 * 1024 * 1024,
  /** Lock files of big monorepos reach tens of MB. */
  lockfile: 64 * 1024 * 1024,
  /** package.json, METADATA, copyright, os-release. */
  small: 4 * 1024 * 1024,
} as const;

/**
 * Feed `body`'s chunks to `take` until it returns false, then read the rest without keeping it.
 * A tar entry's body must be read to its end or not at all: stopping half-way destroys the
 * archive stream under the tar reader.
 */
export async function consume(body: Readable, take: (chunk: Buffer) => boolean): Promise<void> {
  let wanted = true;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (wanted) wanted = take(chunk);
  }
}

/** The whole of `body`, or undefined (reading nothing) when its `size` exceeds `limit`. */
export async function readBounded(body: Readable, size: number, limit: number): Promise<Buffer | undefined> {
  if (size > limit) return undefined;
  const chunks: Buffer[] = [];
  let have = 0;
  await consume(body, (chunk) => {
    have += chunk.length;
    chunks.push(chunk);
    return have <= limit;
  });
  return have > limit ? undefined : Buffer.concat(chunks, have);
}

/** UTF-8 text without a BOM. */
export function decodeText(data: Buffer): string {
  const text = data.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
