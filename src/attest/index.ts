/**
 * Attestations for built images: a package scan of the layers, the SBOM (SPDX 2.3) made from it,
 * and SLSA provenance v1. Attaching them to images is the output stage's job.
 */
export { scanLayers, type ScanOptions } from './scan/scan.ts';
export type { DistroInfo, Ecosystem, PackageLocation, PackageSource, ScanLayer, ScanResult, ScannedPackage } from './scan/types.ts';
export { generateSpdx, SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE, type GeneratedDocument, type SpdxDocument, type SpdxOptions, type SpdxSubject } from './spdx.ts';
export {
  generateProvenance,
  sbomStatement,
  DEFAULT_BUILDER_ID,
  INTOTO_STATEMENT_TYPE,
  LADING_BUILD_TYPE,
  SLSA_PROVENANCE_PREDICATE_TYPE,
  type InTotoStatement,
  type ProvenanceInput,
  type ProvenanceMode,
  type SlsaProvenance,
} from './provenance.ts';
export { gitSource, stripCredentials, type GitSource } from './git.ts';
export { attestationTimestamp, sourceDateEpoch } from './time.ts';
