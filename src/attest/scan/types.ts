/** What the package scanner reads and what it finds. */
import type { Readable } from 'node:stream';
import type { LayerDescriptor } from '../../image/types.ts';

/** One layer of an image as the scanner reads it: its descriptor and its blob (gzip or plain tar). */
export interface ScanLayer {
  descriptor: LayerDescriptor;
  open(): Promise<Readable>;
}

export type Ecosystem = 'deb' | 'apk' | 'npm' | 'pypi' | 'golang';

/** Which reader found a package, and so what its locations mean. */
export type PackageSource =
  | 'dpkg-status'
  | 'dpkg-status.d'
  | 'apk-installed'
  | 'npm-package.json'
  | 'npm-package-lock'
  | 'yarn-lock'
  | 'pnpm-lock'
  | 'python-dist-info'
  | 'python-egg-info'
  | 'go-binary';

export interface PackageLocation {
  /** Absolute path inside the image. */
  path: string;
  /** Index of the layer (0 = base) that added the package at this path. */
  layerIndex: number;
}

export interface ScannedPackage {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  purl: string;
  source: PackageSource;
  /** Every place the package was found, sorted; the first is the earliest layer's. */
  locations: PackageLocation[];
  /** The diffID of the layer that added it (the earliest of its locations). */
  layer: string;
  layerIndex: number;
  architecture?: string;
  /** The source package (deb `Source:`, apk `o:`) when it differs from the name. */
  sourceName?: string;
  sourceVersion?: string;
  /** Declared licences as written by the package, in order; normalised only when documents are made. */
  licenses: string[];
  /** For Python: `License-Expression` (already SPDX). */
  licenseExpression?: string;
  /** For Python: `License ::` Trove classifiers. */
  licenseClassifiers?: string[];
  /** Go modules: the module checksum (`h1:…`). */
  checksum?: string;
  /** Go: the toolchain version the binary was built with (`go1.22.1`). */
  goVersion?: string;
  /** Go: the main module of the binary (as opposed to a dependency). */
  goMain?: boolean;
}

export interface DistroInfo {
  /** `ID` from os-release: debian, ubuntu, alpine. */
  id: string;
  versionId?: string;
  codename?: string;
  prettyName?: string;
}

export interface ScanResult {
  /** diffIDs of the scanned layers, in order. */
  layers: string[];
  distro?: DistroInfo;
  /** Sorted by ecosystem, then purl. */
  packages: ScannedPackage[];
  /** Things the scanner skipped or could not read (oversized files, malformed metadata). Sorted. */
  warnings: string[];
}
