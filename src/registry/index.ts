/** The registry client's public surface; the rest of lading imports from here. */
export { RegistryClient, type RegistryClientOptions } from './client.ts';
export {
  parseReference,
  familiarString,
  familiarName,
  registryApiHost,
  canonicalRegistry,
  Reference,
  type ImageReference,
  type ParseReferenceOptions,
} from './reference.ts';
export type { RegistryEvent, EventSink } from './events.ts';
export type { PushResult } from './push.ts';
export type { ResolvedImage, BlobOrigin, FetchedManifest } from './pull.ts';
export { referrersTag, referrerDescriptor, type ReferrerList, type ReferrersVia } from './referrers.ts';
export type { CopyOptions } from './copy.ts';
export { parsePlatform, formatPlatform, hostPlatform, type PlatformSpec } from './platform.ts';
export { Keychain, defaultKeychain, staticProvider, envProvider, dockerConfigProvider, runCredentialHelper, AUTH_ENV, type DefaultKeychainOptions, type CredentialInput } from './auth/keychain.ts';
export { githubActionsProvider, gceMetadataProvider, ecrProvider, type EcrSdk } from './auth/ci-providers.ts';
export type { Credential, CredentialProvider } from './auth/credential.ts';
export { createHttpClient, type HttpClient, type HttpClientKind } from './http.ts';
