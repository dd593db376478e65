/**
 * Minimal ELF files laid out the way the Go linker lays out build information, for testing the
 * reader on formats and byte orders no toolchain here produces (pre-1.18 pointer format, 32-bit
 * big-endian). Only what the reader looks at is real: the ELF header, program headers, segments.
 */
export interface SegmentSpec {
  /** PF_R 4, PF_W 2, PF_X 1. */
  flags: number;
  /** Page-aligned virtual address. */
  vaddr: number;
  data: Buffer;
}

export const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const SENTINEL_START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const SENTINEL_END = Buffer.from('f932433186182072008242104116d8f2', 'hex');

/** Module text wrapped in the 16-byte sentinels the linker puts around it. */
export function wrapModInfo(text: string): Buffer {
  return Buffer.concat([SENTINEL_START, Buffer.from(text), SENTINEL_END]);
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The `.go.buildinfo` contents of Go ≥ 1.18: header, then both strings inline. */
export function inlineBuildInfo(version: string, mod: Buffer, ptrSize = 8): Buffer {
  const header = Buffer.alloc(32);
  MAGIC.copy(header);
  header[14] = ptrSize;
  header[15] = 2;
  const v = Buffer.from(version);
  return Buffer.concat([header, uvarint(v.length), v, uvarint(mod.length), mod]);
}

export function buildElf(options: { is64: boolean; little: boolean; segments: SegmentSpec[] }): Buffer {
  const { is64, little, segments } = options;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const offsets = segments.map((s, i) => 0x1000 * (i + 1) + (s.vaddr % 0x1000));
  const size = Math.max(0x1000, ...segments.map((s, i) => offsets[i]! + s.data.length));
  const file = Buffer.alloc(size);
  const w16 = (v: number, at: number): number => (little ? file.writeUInt16LE(v, at) : file.writeUInt16BE(v, at));
  const w32 = (v: number, at: number): number => (little ? file.writeUInt32LE(v, at) : file.writeUInt32BE(v, at));
  const w64 = (v: number, at: number): number => (little ? file.writeBigUInt64LE(BigInt(v), at) : file.writeBigUInt64BE(BigInt(v), at));
  file.write('\x7fELF', 0, 'latin1');
  file[4] = is64 ? 2 : 1;
  file[5] = little ? 1 : 2;
  file[6] = 1;
  w16(2, 16); // ET_EXEC
  w16(is64 ? 62 : 8, 18); // x86-64 or MIPS
  w32(1, 20);
  if (is64) {
    w64(ehsize, 0x20);
    w16(ehsize, 0x34);
    w16(phentsize, 0x36);
    w16(segments.length, 0x38);
  } else {
    w32(ehsize, 0x1c);
    w16(ehsize, 0x28);
    w16(phentsize, 0x2a);
    w16(segments.length, 0x2c);
  }
  segments.forEach((s, i) => {
    const o = ehsize + i * phentsize;
    if (is64) {
      w32(1, o);
      w32(s.flags, o + 4);
      w64(offsets[i]!, o + 8);
      w64(s.vaddr, o + 16);
      w64(s.vaddr, o + 24);
      w64(s.data.length, o + 32);
      w64(s.data.length, o + 40);
      w64(0x1000, o + 48);
    } else {
      w32(1, o);
      w32(offsets[i]!, o + 4);
      w32(s.vaddr, o + 8);
      w32(s.vaddr, o + 12);
      w32(s.data.length, o + 16);
      w32(s.data.length, o + 20);
      w32(s.flags, o + 24);
      w32(0x1000, o + 28);
    }
    s.data.copy(file, offsets[i]!);
  });
  return file;
}

/**
 * A Go < 1.18 binary: the header in a writable segment holds pointers to two Go string headers
 * (data pointer, length) placed right after it, whose data lives in a read-only segment.
 */
export function pointerFormatElf(options: { is64: boolean; little: boolean; version: string; mod: Buffer }): Buffer {
  const { is64, little } = options;
  const ptrSize = is64 ? 8 : 4;
  // Big enough that the strings lie past the first 64 KiB, as in real programs.
  const ro = 0x10000;
  const rw = 0x40000;
  const at = 0x20000;
  const rodata = Buffer.alloc(at + 0x100 + options.mod.length);
  Buffer.from(options.version).copy(rodata, at);
  options.mod.copy(rodata, at + 0x100);
  const data = Buffer.alloc(32 + 4 * ptrSize + 64);
  MAGIC.copy(data);
  data[14] = ptrSize;
  data[15] = little ? 0 : 1;
  const put = (v: number, at: number): void => {
    if (is64) little ? data.writeBigUInt64LE(BigInt(v), at) : data.writeBigUInt64BE(BigInt(v), at);
    else little ? data.writeUInt32LE(v, at) : data.writeUInt32BE(v, at);
  };
  const versionHeader = rw + 32;
  const modHeader = rw + 32 + 2 * ptrSize;
  put(versionHeader, 16);
  put(modHeader, 16 + ptrSize);
  put(ro + at, 32);
  put(options.version.length, 32 + ptrSize);
  put(ro + at + 0x100, 32 + 2 * ptrSize);
  put(options.mod.length, 32 + 3 * ptrSize);
  return buildElf({ is64, little, segments: [{ flags: 4, vaddr: ro, data: rodata }, { flags: 6, vaddr: rw, data }] });
}
