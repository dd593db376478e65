/** A package as one metadata file describes it, before the scanner knows its layer, distro and purl. */
import type { Ecosystem, PackageSource } from './types.ts';

export interface FoundPackage {
  ecosystem: Ecosystem;
  source: PackageSource;
  name: string;
  version: string;
  architecture?: string;
  sourceName?: string;
  sourceVersion?: string;
  licenses: string[];
  licenseExpression?: string;
  licenseClassifiers?: string[];
  checksum?: string;
  goVersion?: string;
  goMain?: boolean;
  /**
   * For package databases (dpkg status, apk installed) rewritten by every layer that installs
   * something: the layer that first listed this package at this version, set as layers are applied.
   */
  since?: number;
}

/** The key under which a database entry is "the same package" from one layer's copy to the next. */
export function databaseKey(p: FoundPackage): string {
  return `${p.name}\0${p.architecture ?? ''}\0${p.version}`;
}
