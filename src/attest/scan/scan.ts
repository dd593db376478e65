/**
 * The package scanner: reads an image's layers in order, once each, as streams, keeping only the
 * metadata files the package readers need (and which layer last wrote each), applies whiteouts and
 * opaque directories, and reports the packages of the resulting file system with the layer that
 * added each. Nothing is extracted; no layer is held in memory; each kept file has a ceiling.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ERROR_CODES, LadingError, throwIfAborted } from '../../errors.ts';
import { decompressLayer } from '../../layer/decompress.ts';
import { readTar, type TarEntry } from '../../layer/tar-reader.ts';
import { apkPurl, debPurl, golangPurl, npmPurl, pypiPurl } from '../purl.ts';
import { parseApkInstalled } from './apk.ts';
import { parseCopyrightLicenses, parseDpkgStatus } from './dpkg.ts';
import { databaseKey, type FoundPackage } from './found.ts';
import { readGoBuildInfo, scanGoStream, type ByteSource, type GoBuildInfo } from './go-buildinfo.ts';
import { LayerChanges, LayeredFiles, classifyPath, type FileRecord } from './layered-files.ts';
import { isInstalledPackageJson, isLockFile, parsePackageJson, parsePackageLock, parsePnpmLock, parseYarnLock } from './npm.ts';
import { parseOsRelease } from './os-release.ts';
import { parsePythonMetadata, pythonMetadataKind } from './python.ts';
import { LIMITS, decodeText, readBounded } from './read-text.ts';
import type { DistroInfo, PackageLocation, ScanLayer, ScanResult, ScannedPackage } from './types.ts';

export interface ScanOptions {
  signal?: AbortSignal;
  /** Where old Go binaries are spilled for random access (default: the system temporary folder). */
  tmpDir?: string;
}

type Data =
  | { kind: 'packages'; packages: FoundPackage[]; database: boolean }
  | { kind: 'copyright'; licenses: string[] }
  | { kind: 'os-release'; distro: DistroInfo | undefined }
  | { kind: 'symlink'; target: string }
  /** A Go binary of the pointer format: its build info is read after all layers, from the file. */
  | { kind: 'go-deferred' };

const DPKG_STATUS = 'var/lib/dpkg/status';
const DPKG_STATUS_D = 'var/lib/dpkg/status.d';
const APK_INSTALLED = 'lib/apk/db/installed';
const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
const COPYRIGHT_RE = /^usr\/share\/doc\/[^/]+\/copyright$/;

/** Symlinks worth keeping: those that can redirect the fixed paths above (/lib → usr/lib, doc dirs). */
function keepsSymlink(p: string): boolean {
  const depth = p.split('/').length;
  return depth <= 3 || (depth === 4 && p.startsWith('usr/share/doc/'));
}

export async function scanLayers(layers: ScanLayer[], options: ScanOptions = {}): Promise<ScanResult> {
  const files = new LayeredFiles<Data>();
  const warnings = new Set<string>();
  for (let i = 0; i < layers.length; i++) {
    throwIfAborted(options.signal);
    const changes = await readLayer(layers[i]!, i, files, warnings, options.signal);
    files.apply(i, changes, inheritSince);
  }
  const resolve = (p: string): string => resolvePath(files, p);

  let distro: DistroInfo | undefined;
  for (const p of OS_RELEASE) {
    const d = files.get(resolve(p))?.data;
    if (d?.kind === 'os-release') {
      distro = d.distro;
      break;
    }
  }

  const found: { pkg: FoundPackage; location: PackageLocation }[] = [];
  const add = (pkgs: FoundPackage[], p: string, record: FileRecord<Data>): void => {
    for (const pkg of pkgs) found.push({ pkg, location: { path: `/${p}`, layerIndex: pkg.since ?? record.layer } });
  };
  const deferred: { path: string; layer: number }[] = [];
  const statusPath = resolve(DPKG_STATUS);
  const statusDir = resolve(DPKG_STATUS_D);
  const apkPath = resolve(APK_INSTALLED);
  for (const [p, record] of files.entries()) {
    const d = record.data;
    if (d.kind === 'go-deferred') deferred.push({ path: p, layer: record.layer });
    if (d.kind !== 'packages') continue;
    const first = d.packages[0];
    // OS packages count only from this image's own databases, not copies elsewhere in the tree.
    if (first?.source === 'dpkg-status' && p !== statusPath) continue;
    if (first?.source === 'dpkg-status.d' && path.posix.dirname(p) !== statusDir) continue;
    if (first?.source === 'apk-installed' && p !== apkPath) continue;
    if (first?.ecosystem === 'deb') {
      for (const pkg of d.packages) {
        const copyright = files.get(resolve(`usr/share/doc/${pkg.name}/copyright`))?.data;
        if (copyright?.kind === 'copyright') pkg.licenses = copyright.licenses;
      }
    }
    add(d.packages, p, record);
  }
  for (const { path: p, layer, pkgs } of await readDeferredGo(layers, deferred, warnings, options)) {
    add(pkgs, p, { layer, data: { kind: 'go-deferred' } });
  }

  return {
    layers: layers.map((l) => l.descriptor.diffID),
    ...(distro ? { distro } : {}),
    packages: merge(found, distro, layers),
    warnings: [...warnings].sort(),
  };
}

/** A database rewritten by a later layer keeps, for entries it already listed, the earlier layer. */
function inheritSince(next: Data, prev: FileRecord<Data>): void {
  if (next.kind !== 'packages' || !next.database || prev.data.kind !== 'packages') return;
  const earlier = new Map<string, number>();
  for (const p of prev.data.packages) earlier.set(databaseKey(p), p.since ?? prev.layer);
  for (const p of next.packages) {
    const since = earlier.get(databaseKey(p));
    if (since !== undefined) p.since = since;
  }
}

async function readLayer(layer: ScanLayer, index: number, lower: LayeredFiles<Data>, warnings: Set<string>, signal?: AbortSignal): Promise<LayerChanges<Data>> {
  const changes = new LayerChanges<Data>();
  const where = (p: string): string => `/${p} in layer ${index} (${layer.descriptor.diffID})`;
  const tarStream = await decompressLayer(await layer.open());
  await readTar(
    tarStream,
    async (entry, body) => {
      const p = entry.path;
      if (p === '' || !classifyPath(changes, p)) return;
      const data = await recordFor(entry, body, changes, lower, (m) => warnings.add(`${where(p)}: ${m}`));
      if (data) {
        changes.replaced.delete(p);
        changes.records.set(p, data);
        if (data.kind === 'packages') for (const pkg of data.packages) pkg.since = data.database ? index : undefined;
        return;
      }
      changes.records.delete(p);
      if (entry.type === 'directory') {
        if (lower.get(p)) changes.replaced.set(p, 'directory');
      } else if (lower.touches(p)) {
        changes.replaced.set(p, 'other');
      }
    },
    { signal },
  );
  return changes;
}

/** What (if anything) the scanner keeps of one entry. */
async function recordFor(
  entry: TarEntry,
  body: Readable,
  changes: LayerChanges<Data>,
  lower: LayeredFiles<Data>,
  warn: (message: string) => void,
): Promise<Data | undefined> {
  const p = entry.path;
  if (entry.type === 'symlink') return keepsSymlink(p) ? { kind: 'symlink', target: entry.linkname ?? '' } : undefined;
  if (entry.type === 'hardlink') {
    const target = entry.linkname ?? '';
    const data = changes.records.get(target) ?? lower.get(target)?.data;
    return data && data.kind !== 'symlink' ? structuredClone(data) : undefined;
  }
  if (entry.type !== 'file') return undefined;

  const text = async (limit: number): Promise<string | undefined> => {
    const data = await readBounded(body, entry.size, limit);
    if (data === undefined) warn(`skipped: larger than ${limit} bytes`);
    return data === undefined ? undefined : decodeText(data);
  };
  const parsed = async <T>(limit: number, parse: (t: string) => T): Promise<T | undefined> => {
    const t = await text(limit);
    if (t === undefined) return undefined;
    try {
      return parse(t);
    } catch (err) {
      warn(`unreadable: ${(err as Error).message}`);
      return undefined;
    }
  };
  const packages = (pkgs: FoundPackage[] | undefined, database = false): Data | undefined =>
    pkgs && pkgs.length > 0 ? { kind: 'packages', packages: pkgs, database } : undefined;

  const base = p.slice(p.lastIndexOf('/') + 1);
  const parent = p.slice(0, Math.max(0, p.lastIndexOf('/')));
  if (OS_RELEASE.includes(p)) return { kind: 'os-release', distro: await parsed(LIMITS.small, parseOsRelease) };
  if (base === 'status' && parent.endsWith('dpkg')) return packages(await parsed(LIMITS.database, (t) => parseDpkgStatus(t, 'dpkg-status')), true);
  if (parent.endsWith('dpkg/status.d')) {
    if (base.endsWith('.md5sums')) return undefined;
    return packages(await parsed(LIMITS.small, (t) => parseDpkgStatus(t, 'dpkg-status.d')));
  }
  if (COPYRIGHT_RE.test(p)) return { kind: 'copyright', licenses: (await parsed(LIMITS.small, parseCopyrightLicenses)) ?? [] };
  if (p.endsWith('apk/db/installed')) return packages(await parsed(LIMITS.database, parseApkInstalled), true);
  if (isInstalledPackageJson(p)) {
    const pkg = await parsed(LIMITS.small, parsePackageJson);
    return packages(pkg ? [pkg] : undefined);
  }
  const lock = isLockFile(p);
  if (lock) {
    const parse = lock === 'npm-package-lock' ? parsePackageLock : lock === 'yarn-lock' ? parseYarnLock : parsePnpmLock;
    return packages(await parsed(LIMITS.lockfile, parse));
  }
  const python = pythonMetadataKind(p);
  if (python) {
    const pkg = await parsed(LIMITS.small, (t) => parsePythonMetadata(t, python));
    return packages(pkg ? [pkg] : undefined);
  }
  if ((entry.mode & 0o111) !== 0 && entry.size >= 64) {
    const scan = await scanGoStream(body, entry.size);
    if (scan.kind === 'go') return packages(goPackages(scan.info));
    if (scan.kind === 'needs-random-access') return { kind: 'go-deferred' };
  }
  return undefined;
}

/** The main module, its dependencies and the standard library of one Go program. */
export function goPackages(info: GoBuildInfo): FoundPackage[] {
  const out: FoundPackage[] = [];
  const base = { ecosystem: 'golang' as const, source: 'go-binary' as const, licenses: [], goVersion: info.goVersion };
  const mainPath = info.main?.path || info.path;
  if (mainPath) out.push({ ...base, name: mainPath, version: info.main?.version ?? '(devel)', goMain: true, ...(info.main?.sum ? { checksum: info.main.sum } : {}) });
  for (const dep of info.deps) {
    if (dep.path === '') continue;
    out.push({ ...base, name: dep.path, version: dep.version, ...(dep.sum ? { checksum: dep.sum } : {}) });
  }
  const std = /^go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)/.exec(info.goVersion);
  if (std) out.push({ ...base, name: 'stdlib', version: std[1]! });
  return out;
}

/** Follow symlinks (kept ones) along `p` inside the image root. */
function resolvePath(files: LayeredFiles<Data>, p: string): string {
  const pending = p.split('/').filter(Boolean);
  const out: string[] = [];
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    const candidate = [...out, part].join('/');
    const data = files.get(candidate)?.data;
    if (data?.kind === 'symlink' && ++hops <= 40) {
      if (data.target.startsWith('/')) out.length = 0;
      pending.unshift(...data.target.split('/').filter(Boolean));
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** Go binaries of the pre-1.18 format: read again from their layer, spilled to a temporary file. */
async function readDeferredGo(
  layers: ScanLayer[],
  deferred: { path: string; layer: number }[],
  warnings: Set<string>,
  options: ScanOptions,
): Promise<{ path: string; layer: number; pkgs: FoundPackage[] }[]> {
  if (deferred.length === 0) return [];
  const out: { path: string; layer: number; pkgs: FoundPackage[] }[] = [];
  const dir = await fs.mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'lading-scan-'));
  try {
    for (const layerIndex of [...new Set(deferred.map((d) => d.layer))].sort((a, b) => a - b)) {
      const wanted = new Set(deferred.filter((d) => d.layer === layerIndex).map((d) => d.path));
      await readTar(
        await decompressLayer(await layers[layerIndex]!.open()),
        async (entry, body) => {
          if (entry.type !== 'file' || !wanted.has(entry.path)) return;
          const file = path.join(dir, randomBytes(8).toString('hex'));
          await pipeline(body, createWriteStream(file));
          const handle = await fs.open(file, 'r');
          try {
            const info = await readGoBuildInfo(fileSource(handle));
            if (info) out.push({ path: entry.path, layer: layerIndex, pkgs: goPackages(info) });
            else warnings.add(`/${entry.path} in layer ${layerIndex}: Go build information could not be read`);
          } finally {
            await handle.close();
            await fs.rm(file, { force: true });
          }
        },
        { signal: options.signal },
      );
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return out;
}

function fileSource(handle: fs.FileHandle): ByteSource {
  return {
    read: async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    },
  };
}

function purlOf(pkg: FoundPackage, distro: DistroInfo | undefined): string {
  switch (pkg.ecosystem) {
    case 'deb':
      return debPurl(pkg.name, pkg.version, pkg.architecture, distro);
    case 'apk':
      return apkPurl(pkg.name, pkg.version, pkg.architecture, distro);
    case 'npm':
      return npmPurl(pkg.name, pkg.version);
    case 'pypi':
      return pypiPurl(pkg.name, pkg.version);
    case 'golang':
      return golangPurl(pkg.name, pkg.version);
    default:
      throw new LadingError(ERROR_CODES.INTERNAL, `unknown ecosystem ${String((pkg as { ecosystem: unknown }).ecosystem)}`);
  }
}

/** One package per purl, its locations merged, sorted so the same image always lists the same way. */
function merge(found: { pkg: FoundPackage; location: PackageLocation }[], distro: DistroInfo | undefined, layers: ScanLayer[]): ScannedPackage[] {
  const byPurl = new Map<string, ScannedPackage>();
  for (const { pkg, location } of found) {
    const purl = purlOf(pkg, distro);
    let out = byPurl.get(purl);
    if (!out) {
      out = {
        ecosystem: pkg.ecosystem,
        name: pkg.name,
        version: pkg.version,
        purl,
        source: pkg.source,
        locations: [],
        layer: '',
        layerIndex: 0,
        licenses: [...pkg.licenses],
      };
      if (pkg.architecture) out.architecture = pkg.architecture;
      if (pkg.sourceName) out.sourceName = pkg.sourceName;
      if (pkg.sourceVersion) out.sourceVersion = pkg.sourceVersion;
      if (pkg.licenseExpression) out.licenseExpression = pkg.licenseExpression;
      if (pkg.licenseClassifiers) out.licenseClassifiers = [...pkg.licenseClassifiers];
      if (pkg.checksum) out.checksum = pkg.checksum;
      if (pkg.goVersion) out.goVersion = pkg.goVersion;
      if (pkg.goMain) out.goMain = true;
      byPurl.set(purl, out);
    } else if (out.licenses.length === 0 && pkg.licenses.length > 0) {
      out.licenses = [...pkg.licenses];
    }
    if (!out.locations.some((l) => l.path === location.path && l.layerIndex === location.layerIndex)) out.locations.push(location);
  }
  const packages = [...byPurl.values()];
  for (const p of packages) {
    p.locations.sort((a, b) => a.layerIndex - b.layerIndex || compare(a.path, b.path));
    p.layerIndex = p.locations[0]!.layerIndex;
    p.layer = layers[p.layerIndex]!.descriptor.diffID;
  }
  return packages.sort((a, b) => compare(a.ecosystem, b.ecosystem) || compare(a.purl, b.purl));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
