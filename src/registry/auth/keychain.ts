/**
 * Where credentials come from, tried in order until one answers: explicit options, the
 * `LADING_REGISTRY_AUTH` variable, docker's config.json (with its credential helpers) and podman's
 * auth.json, then the CI providers (GitHub Actions, GCE metadata, ECR). docs/auth.md describes
 * each source; this file reads them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../../errors.ts';
import { canonicalRegistry } from '../reference.ts';
import { decodeBasicAuth, hasSecret, type Credential, type CredentialProvider } from './credential.ts';
import { ecrProvider, gceMetadataProvider, githubActionsProvider } from './ci-providers.ts';

export class Keychain {
  readonly providers: CredentialProvider[];

  constructor(providers: CredentialProvider[]) {
    this.providers = providers;
  }

  /** The first provider's answer for `registry`, or undefined for anonymous access. */
  async get(registry: string, signal?: AbortSignal): Promise<Credential | undefined> {
    const host = canonicalRegistry(registry);
    for (const provider of this.providers) {
      const cred = await provider.get(host, signal);
      if (cred) return cred;
    }
    return undefined;
  }
}

export type CredentialInput =
  | { username: string; password: string }
  | { identityToken: string; username?: string }
  | { registryToken: string };

export interface DefaultKeychainOptions {
  /** Credentials given directly, by registry host (`ghcr.io`, `docker.io`, `localhost:5000`). */
  credentials?: Record<string, CredentialInput>;
  /** The environment to read (default process.env); tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** Home folder for ~/.docker and ~/.config/containers (default os.homedir()). */
  homedir?: string;
  /** Leave out the CI providers (GitHub Actions, GCE metadata, ECR). */
  ci?: boolean;
}

/** The standard chain: explicit, env, docker/podman config files and helpers, CI providers. */
export function defaultKeychain(options: DefaultKeychainOptions = {}): Keychain {
  const env = options.env ?? process.env;
  const providers: CredentialProvider[] = [];
  if (options.credentials) providers.push(staticProvider(options.credentials));
  providers.push(envProvider({ env }), dockerConfigProvider({ env, homedir: options.homedir }));
  if (options.ci !== false) providers.push(githubActionsProvider({ env }), gceMetadataProvider({ env }), ecrProvider({ env }));
  return new Keychain(providers);
}

// ---- explicit ----

export function staticProvider(credentials: Record<string, CredentialInput>, source = 'explicit options'): CredentialProvider {
  const byHost = new Map<string, CredentialInput>();
  for (const [host, cred] of Object.entries(credentials)) byHost.set(canonicalRegistry(host), cred);
  return {
    name: 'static',
    get: async (registry) => {
      const c = byHost.get(registry);
      return c ? { ...c, source: `${source} (${registry})` } : undefined;
    },
  };
}

// ---- LADING_REGISTRY_AUTH ----

export const AUTH_ENV = 'LADING_REGISTRY_AUTH';

/**
 * `LADING_REGISTRY_AUTH` holds either JSON (docker config.json's shape, `{"auths": {...}}`, or the
 * same map without `auths`), or lines of `HOST=USERNAME:PASSWORD`.
 */
export function envProvider(options: { env?: NodeJS.ProcessEnv; variable?: string } = {}): CredentialProvider {
  const variable = options.variable ?? AUTH_ENV;
  let parsed: Map<string, Credential> | undefined;
  return {
    name: 'env',
    get: async (registry) => {
      const raw = (options.env ?? process.env)[variable];
      if (!raw) return undefined;
      parsed ??= parseAuthEnv(raw, variable);
      return parsed.get(registry);
    },
  };
}

function parseAuthEnv(raw: string, variable: string): Map<string, Credential> {
  const out = new Map<string, Credential>();
  const source = `environment variable ${variable}`;
  const text = raw.trim();
  if (text.startsWith('{')) {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Never echo the value: it holds secrets.
      throw new LadingError(ERROR_CODES.USAGE, `${variable} is not valid JSON`, {
        hint: `set ${variable} to {"auths": {"HOST": {"username": "...", "password": "..."}}} or to lines of HOST=USER:PASSWORD`,
      });
    }
    const auths = (doc.auths && typeof doc.auths === 'object' ? doc.auths : doc) as Record<string, AuthEntry>;
    for (const [key, entry] of Object.entries(auths)) {
      const cred = credentialFromEntry(entry, `${source} (${key})`);
      if (cred) out.set(canonicalRegistry(key), cred);
    }
    return out;
  }
  for (const [n, line] of text.split(/\r?\n/).entries()) {
    if (!line.trim() || line.trim().startsWith('#')) continue;
    const eq = line.indexOf('=');
    const colon = line.indexOf(':', eq + 1);
    if (eq <= 0 || colon < 0) {
      throw new LadingError(ERROR_CODES.USAGE, `${variable} line ${n + 1} is not HOST=USERNAME:PASSWORD`, {
        hint: `one registry per line, e.g. ghcr.io=me:TOKEN; or JSON in config.json's shape`,
      });
    }
    const host = line.slice(0, eq).trim();
    out.set(canonicalRegistry(host), { username: line.slice(eq + 1, colon), password: line.slice(colon + 1), source: `${source} (${host})` });
  }
  return out;
}

// ---- docker config.json, podman auth.json, credential helpers ----

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

function credentialFromEntry(entry: AuthEntry | undefined, source: string): Credential | undefined {
  if (!entry || typeof entry !== 'object') return undefined;
  const cred: Credential = { source };
  if (entry.auth) {
    const basic = decodeBasicAuth(entry.auth);
    if (basic) Object.assign(cred, basic);
  }
  if (entry.username) cred.username = entry.username;
  if (entry.password) cred.password = entry.password;
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  return hasSecret(cred) ? cred : undefined;
}

/** The files to read, in order: docker's config, then the containers (podman, skopeo) auth files. */
export function authFiles(env: NodeJS.ProcessEnv, homedir: string): string[] {
  const files: string[] = [];
  files.push(path.join(env.DOCKER_CONFIG ?? path.join(homedir, '.docker'), 'config.json'));
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(path.join(env.XDG_CONFIG_HOME ?? path.join(homedir, '.config'), 'containers', 'auth.json'));
  return files;
}

/** The value docker passes to helpers and uses as Docker Hub's config key. */
function helperServerURL(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

export function dockerConfigProvider(options: { env?: NodeJS.ProcessEnv; homedir?: string; files?: string[] } = {}): CredentialProvider {
  return {
    name: 'docker-config',
    get: async (registry) => {
      const env = options.env ?? process.env;
      const files = options.files ?? authFiles(env, options.homedir ?? os.homedir());
      for (const file of files) {
        const config = await readConfig(file);
        if (!config) continue;
        const cred = await fromConfig(config, file, registry, env);
        if (cred) return cred;
      }
      return undefined;
    },
  };
}

async function readConfig(file: string): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as ConfigFile;
  } catch {
    throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `${file} is not valid JSON`, { hint: 'fix or remove the file (docker login rewrites it)' });
  }
}

async function fromConfig(config: ConfigFile, file: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const helperFor = Object.entries(config.credHelpers ?? {}).find(([k]) => canonicalRegistry(k) === registry)?.[1];
  const helper = helperFor ?? config.credsStore;
  if (helper) {
    const cred = await runCredentialHelper(helper, helperServerURL(registry), env);
    if (cred) return cred;
  }
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (canonicalRegistry(key) !== registry) continue;
    const cred = credentialFromEntry(entry, `${file} (auths["${key}"])`);
    if (cred) return cred;
  }
  return undefined;
}

/**
 * `docker-credential-NAME get`: the server URL on stdin, `{"Username", "Secret"}` on stdout. A
 * Username of `<token>` means the secret is an identity (refresh) token.
 */
export async function runCredentialHelper(name: string, serverURL: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const source = `credential helper ${program}`;
  const { code, stdout, stderr, spawnError } = await new Promise<{ code: number | null; stdout: string; stderr: string; spawnError?: Error }>((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: '', stderr: '', spawnError: e });
    });
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout: out, stderr: err });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(serverURL);
  });
  if (spawnError) {
    throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `cannot run ${program} for ${serverURL}: ${(spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : spawnError.message}`, {
      hint: `install ${program}, or remove "${name}" from credsStore/credHelpers in your docker config`,
    });
  }
  if (code !== 0) {
    const said = `${stdout} ${stderr}`.trim();
    if (/credentials not found/i.test(said)) return undefined;
    throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `${program} failed for ${serverURL} (exit ${code}): ${said.slice(0, 300)}`, {
      hint: `run \`echo ${serverURL} | ${program} get\` to see what it needs`,
    });
  }
  let doc: { Username?: string; Secret?: string };
  try {
    doc = JSON.parse(stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new LadingError(ERROR_CODES.REGISTRY_AUTH, `${program} printed something other than JSON for ${serverURL}`);
  }
  if (!doc.Secret) return undefined;
  if (doc.Username === '<token>') return { identityToken: doc.Secret, source };
  return { username: doc.Username ?? '', password: doc.Secret, source };
}
