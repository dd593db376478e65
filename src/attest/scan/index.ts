/** The package scanner's public face. */
export { scanLayers, type ScanOptions } from './scan.ts';
export type { DistroInfo, Ecosystem, PackageLocation, PackageSource, ScanLayer, ScanResult, ScannedPackage } from './types.ts';
