/**
 * The build path through a real registry: FROM pulls a base, --push writes every tag, base
 * layers are mounted (never downloaded to be re-uploaded), and the transfer commands work.
 */
import { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { registryWithBase, type RegistryBaseContext } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { writeProject } from '../helpers/build.ts';

const test = testNeeding(['docker-registry', 'skopeo'], 'registry builds') as TestFn<RegistryBaseContext>;

registryWithBase(test, async () => `${(await busyboxImage()).layoutDir}:latest`, 'base/busybox:1');

test('FROM a registry image, --push to two tags: skopeo reads it, the base layer is mounted, nothing is downloaded to re-upload', async (t) => {
  const { registry, base } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${base}\nCOPY --link app.txt /app.txt\nCMD ["cat", "/app.txt"]\n`, 'app.txt': 'hello' });
  const tags = [`${registry.host}/team/app:1`, `${registry.host}/team/app:latest`];
  // Attestations off: an SBOM scan reads the base layers, which this test proves are never moved.
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '-t', tags[0]!, '-t', tags[1]!, '--push', '--sbom=false', '--provenance=false', '--progress', 'plain']);
  t.is(r.code, 0, r.stderr);
  const digest = r.stdout.trim();
  t.regex(r.stderr, /mounted sha256:[a-f0-9]{12} from base\/busybox/);
  t.notRegex(r.stderr, /pulled sha256:[a-f0-9]{12} \(1\.0 MiB\)/, 'the base layer was not downloaded');
  for (const tag of tags) {
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${tag}`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    t.is(inspect.Digest, digest);
    t.is(inspect.Layers.length, 2);
  }
  // Our own inspect agrees and downloads no layer.
  const ours = await runCli(['inspect', tags[0]!]);
  t.is(JSON.parse(ours.stdout).ManifestDigest, digest);
});

test('a second push of the same build uploads nothing', async (t) => {
  const { registry, base } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${base}\nCOPY data /data\n`, data: 'x'.repeat(50000) });
  const tag = `${registry.host}/team/again:1`;
  const first = await runCli(['build', p.context, '--cache-dir', p.cache, '-t', tag, '--push', '--sbom=false', '--provenance=false']);
  t.is(first.code, 0, first.stderr);
  const second = await runCli(['build', p.context, '--cache-dir', p.cache, '-t', tag, '--push', '--sbom=false', '--provenance=false', '--progress', 'plain']);
  t.is(second.code, 0, second.stderr);
  t.notRegex(second.stderr, /^pushed sha256/m);
  t.regex(second.stderr, /exists sha256/);
  t.is(second.stdout, first.stdout);
});

test('lading pull writes an OCI folder skopeo reads; lading copy moves an image between repositories by mounting', async (t) => {
  const { registry, base } = t.context;
  const dir = await tempDir(t);
  const out = path.join(dir, 'pulled');
  const pulled = await runCli(['pull', base, '-o', out, '--cache-dir', path.join(dir, 'cache'), '-q']);
  t.is(pulled.code, 0, pulled.stderr);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:1`], { encoding: 'utf8' })) as { Digest: string };
  t.is(inspect.Digest, pulled.stdout.trim());
  const copied = await runCli(['copy', base, `${registry.host}/mirror/busybox:1`, '--progress', 'plain']);
  t.is(copied.code, 0, copied.stderr);
  t.regex(copied.stderr, /0 B uploaded|mounted/);
  t.is(copied.stdout.trim(), pulled.stdout.trim());
});

test('a base image that does not exist is a clear registry error (exit 3)', async (t) => {
  const { registry } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${registry.host}/nope/missing:1\n` });
  const r = await runCli(['build', p.context, '--cache-dir', p.cache]);
  t.is(r.code, 3);
  t.regex(r.stderr, /nope\/missing/);
});
