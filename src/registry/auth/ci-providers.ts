/**
 * Credentials CI machines already have: the GITHUB_TOKEN of a GitHub Actions job for ghcr.io, the
 * GCE/GKE metadata server's access token for gcr.io and Artifact Registry, and ECR's
 * GetAuthorizationToken through the AWS SDK when it is installed (it is an optional peer: loaded
 * with a dynamic import, never a dependency). Every endpoint can be pointed elsewhere for tests.
 */
import http from 'node:http';
import { ERROR_CODES, LadingError } from '../../errors.ts';
import type { Credential, CredentialProvider } from './credential.ts';

// ---- GitHub Actions ----

export interface GithubActionsOptions {
  env?: NodeJS.ProcessEnv;
  /** Registries the token is good for (default ghcr.io). */
  hosts?: string[];
}

export function githubActionsProvider(options: GithubActionsOptions = {}): CredentialProvider {
  const hosts = new Set(options.hosts ?? ['ghcr.io']);
  return {
    name: 'github-actions',
    get: async (registry) => {
      const env = options.env ?? process.env;
      if (!hosts.has(registry) || env.GITHUB_ACTIONS !== 'true' || !env.GITHUB_TOKEN) return undefined;
      return {
        username: env.GITHUB_ACTOR || 'github-actions',
        password: env.GITHUB_TOKEN,
        source: 'GITHUB_TOKEN of the GitHub Actions job (it needs `permissions: packages: write` to push)',
      };
    },
  };
}

// ---- GCE / GKE metadata server ----

export function isGoogleRegistry(host: string): boolean {
  return host === 'gcr.io' || host.endsWith('.gcr.io') || host.endsWith('-docker.pkg.dev') || host === 'docker.pkg.dev';
}

export interface GceMetadataOptions {
  env?: NodeJS.ProcessEnv;
  /** `host[:port]` of the metadata server (default $GCE_METADATA_HOST or metadata.google.internal). */
  endpoint?: string;
  /** Which registries to answer for (default gcr.io, *.gcr.io, *-docker.pkg.dev). */
  matches?: (host: string) => boolean;
  timeoutMs?: number;
}

export function gceMetadataProvider(options: GceMetadataOptions = {}): CredentialProvider {
  const matches = options.matches ?? isGoogleRegistry;
  let cached: { token: string; expiresAt: number } | undefined;
  let unreachable = false;
  return {
    name: 'gce-metadata',
    get: async (registry, signal) => {
      if (!matches(registry) || unreachable) return undefined;
      const env = options.env ?? process.env;
      const endpoint = options.endpoint ?? env.GCE_METADATA_HOST ?? 'metadata.google.internal';
      const source = `GCE metadata server ${endpoint} (default service account)`;
      if (cached && cached.expiresAt - Date.now() > 60_000) return tokenCredential(cached.token, source);
      let answer: { status: number; body: string };
      try {
        answer = await httpGet(`http://${endpoint}/computeMetadata/v1/instance/service-accounts/default/token`, { 'Metadata-Flavor': 'Google' }, options.timeoutMs ?? 2000, signal);
      } catch {
        // Not on Google Cloud: remember, so the next registry request does not wait again.
        unreachable = true;
        return undefined;
      }
      if (answer.status !== 200) {
        throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `the GCE metadata server ${endpoint} refused a token for ${registry} (HTTP ${answer.status}): ${answer.body.slice(0, 200)}`, {
          hint: 'give the VM or GKE workload a service account with the cloud-platform scope',
        });
      }
      const doc = JSON.parse(answer.body) as { access_token?: string; expires_in?: number };
      if (!doc.access_token) return undefined;
      cached = { token: doc.access_token, expiresAt: Date.now() + (doc.expires_in ?? 300) * 1000 };
      return tokenCredential(doc.access_token, source);
    },
  };
}

function tokenCredential(token: string, source: string): Credential {
  return { username: 'oauth2accesstoken', password: token, source };
}

function httpGet(url: string, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout: timeoutMs, signal }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// ---- Amazon ECR ----

const ECR_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.(amazonaws\.com(\.cn)?|on\.(aws|amazonwebservices\.com\.cn))$/;

export function parseEcrHost(host: string): { account: string; region: string } | undefined {
  const m = ECR_HOST.exec(host);
  return m ? { account: m[1]!, region: m[3]! } : undefined;
}

/** The part of @aws-sdk/client-ecr we use. */
export interface EcrSdk {
  ECRClient: new (config: { region: string; endpoint?: string }) => { send(command: unknown): Promise<EcrTokenAnswer>; destroy?(): void };
  GetAuthorizationTokenCommand: new (input: Record<string, unknown>) => unknown;
}

interface EcrTokenAnswer {
  authorizationData?: { authorizationToken?: string; expiresAt?: Date | string | number }[];
}

export interface EcrOptions {
  env?: NodeJS.ProcessEnv;
  /** ECR API endpoint (default the SDK's for the region; $LADING_ECR_ENDPOINT overrides it). */
  endpoint?: string;
  /** Load the SDK (default: dynamic import of @aws-sdk/client-ecr). */
  loadSdk?: () => Promise<EcrSdk>;
  /** Which registries to answer for, and their region (default: parse *.dkr.ecr.REGION.amazonaws.com). */
  match?: (host: string) => { region: string } | undefined;
}

export const ECR_SDK_PACKAGE = '@aws-sdk/client-ecr';

async function importEcrSdk(): Promise<EcrSdk> {
  // A variable, so TypeScript and bundlers do not try to resolve the optional package.
  const name: string = ECR_SDK_PACKAGE;
  return (await import(name)) as EcrSdk;
}

export function ecrProvider(options: EcrOptions = {}): CredentialProvider {
  const match = options.match ?? parseEcrHost;
  const cache = new Map<string, { cred: Credential; expiresAt: number }>();
  let sdk: Promise<EcrSdk | undefined> | undefined;
  return {
    name: 'ecr',
    get: async (registry) => {
      const where = match(registry);
      if (!where) return undefined;
      const hit = cache.get(registry);
      if (hit && hit.expiresAt - Date.now() > 5 * 60_000) return hit.cred;
      sdk ??= (options.loadSdk ?? importEcrSdk)().catch(() => undefined);
      const mod = await sdk;
      if (!mod) return undefined;
      const env = options.env ?? process.env;
      const endpoint = options.endpoint ?? env.LADING_ECR_ENDPOINT;
      const client = new mod.ECRClient({ region: where.region, ...(endpoint ? { endpoint } : {}) });
      let answer: EcrTokenAnswer;
      try {
        answer = await client.send(new mod.GetAuthorizationTokenCommand({}));
      } catch (err) {
        const e = err as { name?: string; message?: string };
        throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `ECR GetAuthorizationToken for ${registry} failed: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, {
          hint: 'the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role) need ecr:GetAuthorizationToken',
        });
      } finally {
        client.destroy?.();
      }
      const data = answer.authorizationData?.[0];
      const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      if (colon <= 0) return undefined;
      const cred: Credential = {
        username: decoded.slice(0, colon),
        password: decoded.slice(colon + 1),
        source: `ECR GetAuthorizationToken (region ${where.region}, through ${ECR_SDK_PACKAGE})`,
      };
      const expiresAt = data?.expiresAt ? new Date(data.expiresAt).getTime() : Date.now() + 12 * 3600_000;
      cache.set(registry, { cred, expiresAt });
      return cred;
    },
  };
}
