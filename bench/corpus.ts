/**
 * Generated benchmark inputs. Deterministic (seeded), so every run measures the same bytes:
 * a mix of source-like text, structured JSON, already-compressed (random) data and zero runs,
 * roughly the 68% text mix measured on real contexts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** A small fast PRNG (xorshift32), so corpora are identical on every machine. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const WORDS = 'const let function return import export from async await if else for while class extends new this true false null undefined string number boolean interface type module require console log error data value result options config server client request response stream buffer'.split(' ');

export function textChunk(random: () => number, size: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const indent = '  '.repeat(Math.floor(random() * 4));
    const words = Array.from({ length: 3 + Math.floor(random() * 8) }, () => WORDS[Math.floor(random() * WORDS.length)]);
    const line = `${indent}${words.join(' ')}${random() < 0.3 ? ` = ${Math.floor(random() * 100000)};` : ';'}\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export function randomChunk(random: () => number, size: number): Buffer {
  const b = Buffer.alloc(Math.ceil(size / 4) * 4);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(random() * 0x100000000), i);
  return b.subarray(0, size);
}

/** One buffer of `size` bytes: 68% text, 25% incompressible, 7% zeros, in 64 KiB pieces. */
export function mixedBuffer(size: number, seed = 42): Buffer {
  const random = rng(seed);
  const pieces: Buffer[] = [];
  let n = 0;
  while (n < size) {
    const piece = Math.min(65536, size - n);
    const r = random();
    pieces.push(r < 0.68 ? textChunk(random, piece) : r < 0.93 ? randomChunk(random, piece) : Buffer.alloc(piece));
    n += piece;
  }
  return Buffer.concat(pieces);
}

/**
 * A context folder of `files` files totalling about `bytes`, cached under .cache/bench by its
 * parameters so repeated runs reuse it.
 */
export async function contextFolder(root: string, files: number, bytes: number, seed = 7): Promise<string> {
  const dir = path.join(root, `ctx-${files}-${bytes}-${seed}`);
  const marker = path.join(dir, '.complete');
  if (await fs.stat(marker).then(() => true, () => false)) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  const random = rng(seed);
  const avg = Math.floor(bytes / files);
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, `pkg${i % 50}`, `mod${Math.floor(i / 50) % 40}`);
    if (i < 2000) await fs.mkdir(sub, { recursive: true });
    const size = Math.max(1, Math.floor(avg * (0.2 + random() * 1.6)));
    const r = random();
    const data = r < 0.68 ? textChunk(random, size) : r < 0.93 ? randomChunk(random, size) : Buffer.alloc(size);
    await fs.writeFile(path.join(sub, `file${i}.${r < 0.68 ? 'js' : 'bin'}`), data);
  }
  await fs.writeFile(marker, createHash('sha256').update(`${files}:${bytes}:${seed}`).digest('hex'));
  return dir;
}
