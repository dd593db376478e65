/**
 * The build information the Go linker embeds in every executable since Go 1.13: a 32-byte header
 * starting with the magic `\xff Go buildinf:` at a 16-byte aligned address at the start of the
 * writable data (the `.go.buildinfo` section), followed by the Go version and the module
 * information `go version -m` prints.
 *
 * Header layout: magic (14 bytes), pointer size (1), flags (1: bit 0 big-endian, bit 1 inline
 * strings), then either (Go ≥ 1.18, inline) two varint-length-prefixed strings right after the 32
 * bytes, or (older) two pointers at offset 16 to Go string headers (data pointer, length) that must
 * be followed through the program headers' address map. The module text is wrapped in 16-byte
 * sentinels, which are dropped.
 *
 * Reads are bounded: the ELF and program headers must lie in the first 64 KiB, and only the first
 * 2 MiB of each writable segment are searched.
 */
import type { Readable } from 'node:stream';
import { consume } from './read-text.ts';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_SIZE = 32;
const ALIGN = 16;
const HEAD_LIMIT = 64 * 1024;
const SEARCH_LIMIT = 2 * 1024 * 1024;
/** The module text of the largest real programs is well under a megabyte. */
const STRING_LIMIT = 4 * 1024 * 1024;

export interface GoModule {
  path: string;
  version: string;
  sum?: string;
}

export interface GoBuildInfo {
  goVersion: string;
  /** The main package's import path. */
  path?: string;
  main?: GoModule;
  deps: GoModule[];
  /** `build` lines: -compiler=gc, GOOS=linux, vcs.revision=…, in order. */
  settings: [string, string][];
}

/** Random access to a file's bytes; `read` may return fewer bytes at the end of the file. */
export interface ByteSource {
  read(offset: number, length: number): Promise<Buffer>;
}

/** Thrown by a partial source when the parser needs bytes a single streaming pass did not keep. */
export class NeedsRandomAccess extends Error {
  constructor() {
    super('the Go build information points outside the bytes kept from the stream');
  }
}

export function bufferSource(data: Buffer): ByteSource {
  return {
    read: async (offset, length) => data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length)),
  };
}

// ---- ELF ----------------------------------------------------------------------------------------

interface ElfHeader {
  is64: boolean;
  little: boolean;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface Segment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

const PT_LOAD = 1;
const PF_X = 1;
const PF_W = 2;

function u16(b: Buffer, off: number, little: boolean): number {
  return little ? b.readUInt16LE(off) : b.readUInt16BE(off);
}

function u32(b: Buffer, off: number, little: boolean): number {
  return little ? b.readUInt32LE(off) : b.readUInt32BE(off);
}

function u64(b: Buffer, off: number, little: boolean): number {
  const v = little ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
  // Offsets beyond 2^53 are not in any real file; treat them as "nowhere".
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function ptr(b: Buffer, off: number, is64: boolean, little: boolean): number {
  return is64 ? u64(b, off, little) : u32(b, off, little);
}

export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

function parseElfHeader(b: Buffer): ElfHeader | undefined {
  if (b.length < 52 || !isElf(b)) return undefined;
  const is64 = b[4] === 2;
  const little = b[5] !== 2;
  if ((b[4] !== 1 && b[4] !== 2) || (is64 && b.length < 64)) return undefined;
  return is64
    ? {
        is64, little,
        phoff: u64(b, 0x20, little), shoff: u64(b, 0x28, little),
        phentsize: u16(b, 0x36, little), phnum: u16(b, 0x38, little),
        shentsize: u16(b, 0x3a, little), shnum: u16(b, 0x3c, little), shstrndx: u16(b, 0x3e, little),
      }
    : {
        is64, little,
        phoff: u32(b, 0x1c, little), shoff: u32(b, 0x20, little),
        phentsize: u16(b, 0x2a, little), phnum: u16(b, 0x2c, little),
        shentsize: u16(b, 0x2e, little), shnum: u16(b, 0x30, little), shstrndx: u16(b, 0x32, little),
      };
}

function programHeadersEnd(h: ElfHeader): number {
  return h.phoff + h.phnum * h.phentsize;
}

function parseProgramHeaders(b: Buffer, h: ElfHeader): Segment[] | undefined {
  const need = h.is64 ? 56 : 32;
  if (h.phentsize < need || programHeadersEnd(h) > b.length) return undefined;
  const out: Segment[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const o = h.phoff + i * h.phentsize;
    out.push(
      h.is64
        ? { type: u32(b, o, h.little), flags: u32(b, o + 4, h.little), offset: u64(b, o + 8, h.little), vaddr: u64(b, o + 16, h.little), filesz: u64(b, o + 32, h.little) }
        : { type: u32(b, o, h.little), offset: u32(b, o + 4, h.little), vaddr: u32(b, o + 8, h.little), filesz: u32(b, o + 16, h.little), flags: u32(b, o + 24, h.little) },
    );
  }
  return out;
}

/** Loadable segments that are writable and not executable: where the linker puts .go.buildinfo. */
function dataSegments(segments: Segment[]): Segment[] {
  return segments.filter((s) => s.type === PT_LOAD && (s.flags & (PF_X | PF_W)) === PF_W && s.filesz > 0);
}

/** The file range of `.go.buildinfo` from the section headers, when they can be read. */
async function buildInfoSection(src: ByteSource, h: ElfHeader): Promise<{ offset: number; vaddr: number } | undefined> {
  const entSize = h.is64 ? 64 : 40;
  if (h.shoff === 0 || h.shnum === 0 || h.shentsize < entSize || h.shstrndx >= h.shnum || h.shnum * h.shentsize > HEAD_LIMIT) return undefined;
  const table = await src.read(h.shoff, h.shnum * h.shentsize);
  if (table.length < h.shnum * h.shentsize) return undefined;
  const section = (i: number): { name: number; addr: number; offset: number; size: number } => {
    const o = i * h.shentsize;
    return h.is64
      ? { name: u32(table, o, h.little), addr: u64(table, o + 16, h.little), offset: u64(table, o + 24, h.little), size: u64(table, o + 32, h.little) }
      : { name: u32(table, o, h.little), addr: u32(table, o + 12, h.little), offset: u32(table, o + 16, h.little), size: u32(table, o + 20, h.little) };
  };
  const strtab = section(h.shstrndx);
  if (strtab.size > HEAD_LIMIT) return undefined;
  const names = await src.read(strtab.offset, strtab.size);
  const wanted = Buffer.from('.go.buildinfo\0', 'latin1');
  for (let i = 0; i < h.shnum; i++) {
    const s = section(i);
    if (s.name + wanted.length <= names.length && names.subarray(s.name, s.name + wanted.length).equals(wanted)) return { offset: s.offset, vaddr: s.addr };
  }
  return undefined;
}

// ---- build info ---------------------------------------------------------------------------------

function uvarint(b: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const byte = b[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return value > Number.MAX_SAFE_INTEGER ? undefined : { value, next: i + 1 };
    shift += 7;
  }
  return undefined;
}

/** Drop the 16-byte sentinels around the module text (present when it has any content). */
function unwrapModInfo(mod: Buffer): string {
  if (mod.length >= 33 && mod[mod.length - 17] === 0x0a) return mod.subarray(16, mod.length - 16).toString('utf8');
  return '';
}

/** `go version -m` lines: path, mod, dep, `=>` (replacement of the line before), build. */
export function parseModInfo(text: string): Omit<GoBuildInfo, 'goVersion'> {
  const out: Omit<GoBuildInfo, 'goVersion'> = { deps: [], settings: [] };
  let last: GoModule | undefined;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    const mod = (): GoModule => {
      const m: GoModule = { path: f[1] ?? '', version: f[2] ?? '' };
      if (f[3]) m.sum = f[3];
      return m;
    };
    switch (f[0]) {
      case 'path':
        out.path = f[1];
        break;
      case 'mod':
        out.main = last = mod();
        break;
      case 'dep':
        out.deps.push((last = mod()));
        break;
      case '=>':
        // The replacement is what was built; keep it in place of the module it replaces. A local
        // directory (`../greet`) names no module, so the replaced module keeps its path.
        if (last) {
          const r = mod();
          if (!r.path.startsWith('.') && !r.path.startsWith('/')) last.path = r.path;
          last.version = r.version;
          if (r.sum) last.sum = r.sum;
          else delete last.sum;
        }
        break;
      case 'build': {
        const kv = f.slice(1).join('\t');
        const eq = kv.indexOf('=');
        if (eq > 0) out.settings.push([kv.slice(0, eq), kv.slice(eq + 1)]);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** Map a virtual address to a file offset through the loadable segments. */
function fileOffset(segments: Segment[], vaddr: number, length: number): number | undefined {
  for (const s of segments) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr + length <= s.vaddr + s.filesz) return s.offset + (vaddr - s.vaddr);
  }
  return undefined;
}

/** Find the aligned header in one region of the file: returns its file offset. */
async function findHeader(src: ByteSource, region: { offset: number; vaddr: number; length: number }): Promise<number | undefined> {
  const data = await src.read(region.offset, Math.min(region.length, SEARCH_LIMIT));
  for (let i = data.indexOf(MAGIC); i >= 0; i = data.indexOf(MAGIC, i + 1)) {
    if ((region.vaddr + i) % ALIGN === 0 && data.length - i >= HEADER_SIZE) return region.offset + i;
  }
  return undefined;
}

/** The Go build information of an ELF file, or undefined when it is not a Go program. */
export async function readGoBuildInfo(src: ByteSource): Promise<GoBuildInfo | undefined> {
  const head = await src.read(0, HEAD_LIMIT);
  const h = parseElfHeader(head);
  if (!h) return undefined;
  const segments = parseProgramHeaders(head, h);
  if (!segments) return undefined;

  const regions: { offset: number; vaddr: number; length: number }[] = [];
  let section: { offset: number; vaddr: number } | undefined;
  try {
    section = await buildInfoSection(src, h);
  } catch (err) {
    // A streaming pass keeps no section headers (they sit at the end); search the segments instead.
    if (!(err instanceof NeedsRandomAccess)) throw err;
  }
  if (section) regions.push({ ...section, length: HEAD_LIMIT });
  for (const s of dataSegments(segments)) regions.push({ offset: s.offset, vaddr: s.vaddr, length: s.filesz });

  for (const region of regions) {
    const at = await findHeader(src, region);
    if (at === undefined) continue;
    const regionEnd = region.offset + Math.min(region.length, SEARCH_LIMIT + STRING_LIMIT);
    const header = await src.read(at, HEADER_SIZE);
    const ptrSize = header[14]!;
    const flags = header[15]!;
    let version: string;
    let mod: Buffer;
    if (flags & 2) {
      const rest = await src.read(at + HEADER_SIZE, Math.min(STRING_LIMIT, regionEnd - at - HEADER_SIZE));
      const v = uvarint(rest, 0);
      if (!v || v.next + v.value > rest.length) return undefined;
      version = rest.subarray(v.next, v.next + v.value).toString('utf8');
      const m = uvarint(rest, v.next + v.value);
      if (!m || m.next + m.value > rest.length) return undefined;
      mod = rest.subarray(m.next, m.next + m.value);
    } else {
      if (ptrSize !== 4 && ptrSize !== 8) return undefined;
      const little = (flags & 1) === 0;
      const is64 = ptrSize === 8;
      const readGoString = async (pointerAt: number): Promise<Buffer | undefined> => {
        const hdrAddr = ptr(header, pointerAt, is64, little);
        const hdrOffset = fileOffset(segments, hdrAddr, 2 * ptrSize);
        if (hdrOffset === undefined) return undefined;
        const strHeader = await src.read(hdrOffset, 2 * ptrSize);
        if (strHeader.length < 2 * ptrSize) return undefined;
        const dataAddr = ptr(strHeader, 0, is64, little);
        const length = ptr(strHeader, ptrSize, is64, little);
        if (length > STRING_LIMIT) return undefined;
        const dataOffset = fileOffset(segments, dataAddr, length);
        if (dataOffset === undefined) return undefined;
        const data = await src.read(dataOffset, length);
        return data.length === length ? data : undefined;
      };
      const v = await readGoString(16);
      const m = await readGoString(16 + ptrSize);
      if (!v) return undefined;
      version = v.toString('utf8');
      mod = m ?? Buffer.alloc(0);
    }
    if (version === '') return undefined;
    return { goVersion: version, ...parseModInfo(unwrapModInfo(mod)) };
  }
  return undefined;
}

// ---- one streaming pass -------------------------------------------------------------------------

interface Window {
  offset: number;
  data: Buffer;
  filled: number;
}

/** Bytes kept from one pass: the file's head and windows at known offsets; anything else is missing. */
class PartialSource implements ByteSource {
  readonly windows: Window[] = [];

  constructor(private readonly size: number) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return Buffer.alloc(0);
    for (const w of this.windows) {
      if (offset >= w.offset && end <= w.offset + w.filled) return w.data.subarray(offset - w.offset, end - w.offset);
    }
    throw new NeedsRandomAccess();
  }
}

/** Copy the part of `chunk` (which starts at file offset `at`) that continues `w`. */
function fill(w: Window, chunk: Buffer, at: number): void {
  const start = w.offset + w.filled;
  const end = Math.min(at + chunk.length, w.offset + w.data.length);
  if (start < at || start >= end) return;
  chunk.copy(w.data, w.filled, start - at, end - at);
  w.filled += end - start;
}

export type GoScan = { kind: 'go'; info: GoBuildInfo } | { kind: 'not-go' } | { kind: 'needs-random-access' };

/**
 * Look for Go build information in one pass over an executable's `size` bytes, keeping only its
 * head and the start of its data segments. Old (pre-1.18) binaries point elsewhere in the file;
 * for those the caller must come back with random access.
 */
export async function scanGoStream(body: Readable, size: number): Promise<GoScan> {
  const partial = new PartialSource(size);
  const head: Window = { offset: 0, data: Buffer.allocUnsafe(Math.min(HEAD_LIMIT, size)), filled: 0 };
  partial.windows.push(head);
  let header: ElfHeader | undefined;
  let planned = false;
  let notGo = false;
  let pos = 0;
  // Returns whether more bytes are wanted.
  const take = (chunk: Buffer): boolean => {
    fill(head, chunk, pos);
    if (!header) {
      if (head.filled >= 4 && !isElf(head.data.subarray(0, 4))) return !(notGo = true);
      if (head.filled >= Math.min(64, head.data.length)) {
        header = parseElfHeader(head.data.subarray(0, head.filled));
        if (!header || programHeadersEnd(header) > head.data.length) return !(notGo = true);
      }
    }
    if (header && !planned && head.filled >= programHeadersEnd(header)) {
      const segments = parseProgramHeaders(head.data.subarray(0, head.filled), header) ?? [];
      const data = dataSegments(segments).filter((s) => s.offset < size);
      if (data.length === 0) return !(notGo = true);
      for (const s of data) {
        const w: Window = { offset: s.offset, data: Buffer.allocUnsafe(Math.min(s.filesz, SEARCH_LIMIT + STRING_LIMIT, size - s.offset)), filled: 0 };
        // A segment that starts inside the head is taken from it, then continued from the stream.
        if (s.offset < head.filled) {
          const n = Math.min(head.filled - s.offset, w.data.length);
          head.data.copy(w.data, 0, s.offset, s.offset + n);
          w.filled = n;
        }
        partial.windows.push(w);
      }
      planned = true;
    }
    for (const w of partial.windows) if (w !== head) fill(w, chunk, pos);
    pos += chunk.length;
    return !(planned && partial.windows.every((w) => w.filled === w.data.length));
  };
  await consume(body, take);
  if (notGo) return { kind: 'not-go' };
  if (!planned) return { kind: 'not-go' };
  try {
    const info = await readGoBuildInfo(partial);
    return info ? { kind: 'go', info } : { kind: 'not-go' };
  } catch (err) {
    if (err instanceof NeedsRandomAccess) return { kind: 'needs-random-access' };
    throw err;
  }
}
