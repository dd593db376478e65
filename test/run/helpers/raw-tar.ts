/**
 * A tiny ustar writer with no safety at all, for building the hostile archives the readers must
 * refuse: names with `..`, absolute names, lying sizes, links anywhere. Never use it for real layers.
 */
import { gzipSync } from 'node:zlib';

export interface RawEntry {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' directory, '6' fifo. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x';
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  body?: Buffer;
  /** Size written in the header; defaults to the body's length (set it larger to lie). */
  declaredSize?: number;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an 'x' header before the entry. */
  pax?: Record<string, string>;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

export function rawHeader(e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  const size = e.declaredSize ?? e.body?.length ?? 0;
  h.write(e.name.slice(0, 100), 0, 'utf8');
  h.write(octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(e.uid ?? 0, 8), 108, 'ascii');
  h.write(octal(e.gid ?? 0, 8), 116, 'ascii');
  h.write(octal(Math.min(size, 0o77777777777), 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(e.type ?? '0', 156, 'ascii');
  if (e.linkname) h.write(e.linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'ascii');
  h.write(octal(e.devminor ?? 0, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function paxBody(records: Record<string, string>): Buffer {
  let out = '';
  for (const [key, value] of Object.entries(records)) {
    const rest = ` ${key}=${value}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    out += `${len}${rest}`;
  }
  return Buffer.from(out, 'utf8');
}

function pad(body: Buffer): Buffer {
  const rest = body.length % 512;
  return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)]);
}

/** The archive's bytes; `end: false` leaves out the two zero blocks (a truncated archive). */
export function rawTar(entries: RawEntry[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const body = paxBody(e.pax);
      parts.push(rawHeader({ name: 'PaxHeader', type: 'x', body }), pad(body));
    }
    parts.push(rawHeader(e));
    if (e.body && e.body.length > 0) parts.push(pad(e.body));
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function rawTarGz(entries: RawEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}

export const file = (name: string, content: string | Buffer, extra: Partial<RawEntry> = {}): RawEntry => ({
  name,
  type: '0',
  body: Buffer.isBuffer(content) ? content : Buffer.from(content),
  ...extra,
});
export const dir = (name: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '5', ...extra });
export const symlink = (name: string, target: string): RawEntry => ({ name, type: '2', linkname: target, mode: 0o777 });
export const hardlink = (name: string, target: string): RawEntry => ({ name, type: '1', linkname: target });
