/**
 * Tar headers as bytes: a ustar header, preceded by a PAX extended header when a name, a link
 * target or a number does not fit (or when there are PAX records to carry).
 *
 * The bytes are exactly those tar-stream 3 writes for the same header (its `pack` wrote every
 * layer before this file existed, so layer digests stay what they were; test/layer/tar-writer.test.ts
 * compares the two). That includes its habits: the ustar header after a PAX header is named
 * `PaxHeader`, sizes too large for octal are written in base-256, empty owner names are left out.
 */
import type { TarEntry } from './tar-reader.ts';

/**
 * What a header holds: the fields a reader gives back (tar-reader.ts), with tar's own names for
 * the name (a directory's ends in '/') and the types (a hard link is `link`).
 */
export interface TarHeader extends Pick<TarEntry, 'mode' | 'uid' | 'gid' | 'size' | 'mtime' | 'linkname' | 'devmajor' | 'devminor'> {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo';
  uname?: string;
  gname?: string;
  pax?: Record<string, string>;
}

const TYPEFLAG: Record<TarHeader['type'] | 'pax-header', number> = {
  file: 0,
  link: 1,
  symlink: 2,
  'character-device': 3,
  'block-device': 4,
  directory: 5,
  fifo: 6,
  'pax-header': 72,
};

/** The whole header (PAX header, PAX records padded to 512, ustar header) for `header`. */
export function encodeTarHeader(header: TarHeader): Buffer {
  if (!header.pax || Object.keys(header.pax).length === 0) {
    const plain = encodeUstar(header.name, header, header.type, header.size, header.linkname);
    if (plain) return plain;
  }
  let records = '';
  if (header.name) records += paxRecord('path', header.name);
  if (header.linkname) records += paxRecord('linkpath', header.linkname);
  for (const [key, value] of Object.entries(header.pax ?? {})) records += paxRecord(key, value);
  const pax = Buffer.from(records);
  const linkname = header.linkname ? 'PaxHeader' : undefined;
  const paxHeader = encodeUstar('PaxHeader', header, 'pax-header', pax.length, linkname)!;
  const ustar = encodeUstar('PaxHeader', header, header.type, header.size, linkname)!;
  const padding = (512 - (pax.length % 512)) % 512;
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding), ustar]);
}

/** `LEN key=value\n`, where LEN counts the whole record including its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(body);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${body}`;
}

/** One 512-byte ustar header, or undefined when the name or link target does not fit. */
function encodeUstar(nameIn: string, h: TarHeader, type: TarHeader['type'] | 'pax-header', size: number, linkname: string | undefined): Buffer | undefined {
  // Written as given: a directory's name carries its '/' already (and after a PAX header the name
  // is plain `PaxHeader` whatever the type, as tar-stream wrote it).
  let name = nameIn;
  // ASCII only: anything else goes in a PAX record.
  if (Buffer.byteLength(name) !== name.length) return undefined;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return undefined;
  if (linkname && Buffer.byteLength(linkname) > 100) return undefined;

  const buf = Buffer.alloc(512);
  buf.write(name, 0);
  buf.write(octal(h.mode & 0o7777, 6), 100);
  buf.write(octal(h.uid, 6), 108);
  buf.write(octal(h.gid, 6), 116);
  if (size.toString(8).length > 11) {
    // Base-256: a 0x80 marker, then the size big-endian in the remaining 11 bytes.
    buf[124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      buf[124 + i] = n & 0xff;
      n = Math.floor(n / 0x100);
    }
  } else buf.write(octal(size, 11), 124);
  buf.write(octal(h.mtime | 0, 11), 136);
  buf[156] = 0x30 + TYPEFLAG[type];
  if (linkname) buf.write(linkname, 157);
  buf.write('ustar\u000000', 257, 'latin1');
  if (h.uname) buf.write(h.uname, 265);
  if (h.gname) buf.write(h.gname, 297);
  buf.write(octal(h.devmajor ?? 0, 6), 329);
  buf.write(octal(h.devminor ?? 0, 6), 337);
  if (prefix) buf.write(prefix, 345);
  let sum = 8 * 32; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += buf[i]!;
  for (let i = 156; i < 512; i++) sum += buf[i]!;
  buf.write(octal(sum, 6), 148);
  return buf;
}

/** `n` octal digits and a space; all sevens when the value does not fit (tar-stream's choice). */
function octal(value: number, n: number): string {
  const digits = value.toString(8);
  return digits.length > n ? `${'7'.repeat(n)} ` : `${digits.padStart(n, '0')} `;
}
