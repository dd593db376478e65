/**
 * lading's public library API. The CLI uses nothing else.
 *
 * ```ts
 * import { build } from 'lading';
 * const result = await build({ context: '.', outputs: [{ type: 'oci', dest: 'out' }] });
 * console.log(result.digest);
 * ```
 */
export { build, defaultCacheDir, sourceDateEpoch } from './api/build.ts';
export type { BuildOptions, BuildResult, OutputSpec, PlatformImage } from './api/build.ts';
export { cacheList, cachePrune, cacheVerify } from './api/cache.ts';
export { readAttestations, readSbom, readProvenance, verifyAttestations } from './api/attestation-reader.ts';
export type { AttestationReport, AttachedDocument, AttestationVerifyReport, FoundAttestation, ReadAttestationsOptions, SpdxDocument, SlsaProvenance, InTotoStatement } from './api/attestation-reader.ts';
export { push, pull, inspect, copy } from './api/registry.ts';
export type { RegistryOptions, TransferOptions, PullOptions, PullResult, InspectResult } from './api/registry.ts';
export type { PushResult, RegistryEvent, CredentialInput } from './registry/index.ts';
export type { CacheListing, PruneReport, VerifyReport, PruneOptions, CacheDirOption } from './api/cache.ts';
export type { BuildEvent, StepRef } from './engine/events.ts';
export type { StepReport } from './engine/build.ts';
export { LadingError, ERROR_CODES, isLadingError } from './errors.ts';
export type { ErrorCode, SourceLocation } from './errors.ts';
export type { Image, ImageIndex } from './image/image.ts';
export type { Descriptor, Manifest, Index, ImageConfig, Platform } from './image/types.ts';
export { VERSION } from './version.ts';
