/**
 * Registry credentials never leave the request that needs them: a full build (pull a private base,
 * push, export the cache) with the password in LADING_REGISTRY_AUTH, then every output is searched
 * for it in every form (plain, base64 of user:password, base64, URL-encoded): the CLI's stdout and
 * stderr, the library's progress events and errors, every file of the OCI output and of the store
 * (gzip blobs decompressed), and everything the registry stored. Failing builds (wrong password,
 * a missing image) are searched too.
 *
 * A build secret (`--secret id=token,env=...` used by RUN --mount=type=secret) gets the same
 * search: it must reach the step and nothing else.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { build, isLadingError, type BuildEvent } from '../../src/index.ts';
import { Keychain, RegistryClient, staticProvider } from '../../src/registry/index.ts';
import { busyboxImage } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { makePki } from '../registry/helpers/pki.ts';
import { readOciLayoutImage } from '../../src/output/oci-layout.ts';
import { runCliToEnd } from '../reliability/helpers/procs.ts';

const test = testNeeding(['docker-registry', 'openssl', 'htpasswd'], 'secrets');

const USER = 'builder';
const PASSWORD = 'pw-7Hq2-never-print-me-Zx9';
const SECRET = 'build-secret-Qm3v-never-store-me-81';
const FORMS = [
  PASSWORD,
  Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
  Buffer.from(PASSWORD).toString('base64'),
  encodeURIComponent(PASSWORD),
  SECRET,
  Buffer.from(SECRET).toString('base64'),
];

/** Every file under `dir` as text, gzip members decompressed. */
async function filesText(dir: string): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        let data = readFileSync(p);
        if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
        out.push({ file: p, text: data.toString('latin1') });
      }
    }
  };
  await walk(dir);
  return out;
}

function leaks(text: string): string[] {
  return FORMS.filter((f) => text.includes(f));
}

test('credentials appear in no output of a full build: logs, events, errors, layers, configs, store, registry', async (t) => {
  const pki = await makePki();
  const dir = await tempDir(t, 'lading-secrets-');
  const htpasswd = path.join(dir, 'htpasswd');
  await fs.writeFile(htpasswd, execFileSync('htpasswd', ['-Bbn', USER, PASSWORD]));
  const registry = await startRegistry({ tls: { certificate: pki.serverCert, key: pki.serverKey }, auth: ['htpasswd:', '  realm: lading-test', `  path: ${htpasswd}`].join('\n') });
  t.teardown(() => registry.stop());
  const host = registry.host;

  // A private base image in the registry.
  const bb = await busyboxImage();
  const client = new RegistryClient({ caFile: pki.caCert, keychain: new Keychain([staticProvider({ [host]: { username: USER, password: PASSWORD } })]) });
  await client.pushImage(await readOciLayoutImage(bb.layoutDir, { refName: 'latest' }), [`${host}/private/base:1`]);
  client.close();

  const ctx = path.join(dir, 'ctx');
  await fs.mkdir(ctx);
  await fs.writeFile(path.join(ctx, 'a.txt'), 'application file\n');
  await fs.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${host}/private/base:1\nCOPY a.txt /a.txt\nRUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /token-size\nWORKDIR /app\nCOPY --from=${host}/private/base:1 /etc/passwd /copied-passwd\nLABEL stage=final\n`);
  const cache = path.join(dir, 'cache');
  const out = path.join(dir, 'out');
  const env = { LADING_REGISTRY_AUTH: `${host}=${USER}:${PASSWORD}`, BUILD_TOKEN: SECRET };
  const common = ['--registry-ca', pki.caCert, '--cache-dir', cache, '--secret', 'id=token,env=BUILD_TOKEN'];

  const outputs: { what: string; text: string }[] = [];
  const cli = await runCliToEnd(['build', ctx, ...common, '--progress', 'plain', '--output', `type=oci,dest=${out}`, '-t', `${host}/private/app:1`, '--push', '--cache-to', `type=registry,ref=${host}/private/cache,mode=max`], env);
  t.is(cli.code, 0, cli.stderr);
  outputs.push({ what: 'build stdout', text: cli.stdout }, { what: 'build stderr', text: cli.stderr });
  t.regex(cli.stderr, /private\/app/, 'the progress output talks about the push');

  // Failures: a wrong password, and a missing image with the right one.
  const wrong = await runCliToEnd(['build', ctx, ...common, '--progress', 'plain', '--no-cache'], { LADING_REGISTRY_AUTH: `${host}=${USER}:${PASSWORD}-wrong`, BUILD_TOKEN: SECRET });
  t.not(wrong.code, 0);
  outputs.push({ what: 'wrong-password stderr', text: wrong.stderr + wrong.stdout });
  await fs.writeFile(path.join(dir, 'Dockerfile.missing'), `FROM ${host}/private/nothing:here\n`);
  const missing = await runCliToEnd(['build', ctx, '-f', path.join(dir, 'Dockerfile.missing'), ...common, '--progress', 'plain'], env);
  t.not(missing.code, 0);
  outputs.push({ what: 'missing-image stderr', text: missing.stderr + missing.stdout });
  const pulled = await runCliToEnd(['pull', `${host}/private/app:1`, '--registry-ca', pki.caCert, '--cache-dir', cache, '--output', path.join(dir, 'pulled'), '--platform', 'linux/amd64'], env);
  t.is(pulled.code, 0, pulled.stderr);
  outputs.push({ what: 'pull output', text: pulled.stderr + pulled.stdout });

  // The library: every event of a build, and the error of a failing one.
  const events: BuildEvent[] = [];
  process.env.BUILD_TOKEN_LIB = SECRET;
  t.teardown(() => void delete process.env.BUILD_TOKEN_LIB);
  await build({ context: ctx, cacheDir: cache, registryCa: pki.caCert, credentials: { [host]: { username: USER, password: PASSWORD } }, secrets: { token: { env: 'BUILD_TOKEN_LIB' } }, noCache: true, onEvent: (e) => events.push(e) });
  outputs.push({ what: 'library events', text: JSON.stringify(events) });
  try {
    await build({ context: ctx, file: path.join(dir, 'Dockerfile.missing'), cacheDir: cache, registryCa: pki.caCert, credentials: { [host]: { username: USER, password: PASSWORD } }, secrets: { token: { env: 'BUILD_TOKEN_LIB' } }, onEvent: (e) => events.push(e) });
    t.fail('the missing image must fail the build');
  } catch (err) {
    t.true(isLadingError(err));
    if (isLadingError(err)) outputs.push({ what: 'library error', text: `${err.describe()}\n${err.stack}\n${JSON.stringify(err.details)}` });
  }

  for (const o of outputs) t.deepEqual(leaks(o.text), [], `no credential in ${o.what}`);
  for (const [what, root] of [['the OCI output', out], ['the store', cache], ['the pulled layout', path.join(dir, 'pulled')], ['the registry storage', registry.dataDir]] as const) {
    const files = await filesText(root);
    t.true(files.length > 0, `${what} has files`);
    for (const f of files) t.deepEqual(leaks(f.text), [], `no credential in ${what}: ${path.relative(root, f.file)}`);
  }
});
