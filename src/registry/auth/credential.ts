/**
 * A credential for one registry, and where it came from. `source` is shown in errors ("docker
 * config /home/me/.docker/config.json", "credential helper docker-credential-ecr-login"), so a
 * person knows which file or variable to fix; the secret fields never are.
 */

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken` in config.json): exchanged at the token endpoint. */
  identityToken?: string;
  /** A bearer token to send as is (`registrytoken`, CI-issued access tokens). */
  registryToken?: string;
  /** Where this credential came from, for messages. Never holds the secret. */
  source: string;
}

/** A credential provider: answers for a registry host, or says nothing (undefined). */
export interface CredentialProvider {
  readonly name: string;
  get(registry: string, signal?: AbortSignal): Promise<Credential | undefined>;
}

/** The secret strings of a credential, for redaction. */
export function secretsOf(cred: Credential | undefined): string[] {
  if (!cred) return [];
  const out = [cred.password, cred.identityToken, cred.registryToken].filter((s): s is string => !!s);
  if (cred.username && cred.password) out.push(`${cred.username}:${cred.password}`);
  return out;
}

export function hasSecret(cred: Credential): boolean {
  return !!(cred.password || cred.identityToken || cred.registryToken);
}

/** Decode config.json's `auth` field (base64 of `user:password`). */
export function decodeBasicAuth(auth: string): { username: string; password: string } | undefined {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
