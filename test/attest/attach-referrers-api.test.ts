/**
 * The referrers API path, which Distribution 2.8 cannot exercise: a small in-memory registry on
 * loopback that implements OCI distribution 1.1's `GET /v2/<name>/referrers/<digest>` (indexing
 * manifests with a subject as they are pushed, honouring `artifactType`). A build with
 * `attestAs: 'referrers'` must use the API and create no fallback tag; reading finds them there.
 */
import test from 'ava';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { build, readSbom, verifyAttestations } from '../../src/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import type { Descriptor, Manifest } from '../../src/image/types.ts';
import { tempDir } from '../helpers/cli.ts';
import { writeProject } from '../helpers/build.ts';

interface FakeRegistry {
  host: string;
  tags: Map<string, string>;
  /** Requests as `METHOD path`, for asserting what the client asked. */
  log: string[];
  close(): Promise<void>;
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function fakeRegistry(): Promise<FakeRegistry> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; type: string }>();
  const tags = new Map<string, string>();
  const log: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      log.push(`${req.method} ${url.pathname}${url.search}`);
      const body = Buffer.concat(chunks);
      const send = (status: number, headers: Record<string, string> = {}, data?: Buffer): void => {
        res.writeHead(status, { 'content-length': String(data?.length ?? 0), ...headers });
        res.end(req.method === 'HEAD' ? undefined : data);
      };
      const notFound = (code: string): void => send(404, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ errors: [{ code, message: 'not found' }] })));
      if (url.pathname === '/v2/') return send(200);
      const m = /^\/v2\/(.+?)\/(blobs\/uploads|blobs|manifests|referrers)\/?(.*)$/.exec(url.pathname);
      if (!m) return notFound('UNSUPPORTED');
      const [, name, kind, rest] = m as unknown as [string, string, string, string];
      if (kind === 'blobs/uploads') {
        if (req.method === 'POST') return send(202, { location: `/v2/${name}/blobs/uploads/${randomUUID()}` });
        const digest = url.searchParams.get('digest')!;
        if (digestOf(body) !== digest) return send(400, {}, Buffer.from('{"errors":[{"code":"DIGEST_INVALID","message":""}]}'));
        blobs.set(digest, body);
        return send(201, { 'docker-content-digest': digest, location: `/v2/${name}/blobs/${digest}` });
      }
      if (kind === 'blobs') {
        const blob = blobs.get(rest);
        return blob ? send(200, { 'docker-content-digest': rest }, blob) : notFound('BLOB_UNKNOWN');
      }
      if (kind === 'manifests') {
        if (req.method === 'PUT') {
          const digest = digestOf(body);
          manifests.set(digest, { bytes: body, type: req.headers['content-type'] ?? '' });
          if (!rest.startsWith('sha256:')) tags.set(`${name}:${rest}`, digest);
          const subject = (JSON.parse(body.toString('utf8')) as Manifest).subject;
          return send(201, { 'docker-content-digest': digest, ...(subject ? { 'oci-subject': subject.digest } : {}) });
        }
        const digest = rest.startsWith('sha256:') ? rest : tags.get(`${name}:${rest}`);
        const found = digest ? manifests.get(digest) : undefined;
        return found ? send(200, { 'content-type': found.type, 'docker-content-digest': digest! }, found.bytes) : notFound('MANIFEST_UNKNOWN');
      }
      // referrers: every stored manifest whose subject is the digest, described as the spec says.
      const wanted = url.searchParams.get('artifactType');
      const list: Descriptor[] = [];
      for (const [digest, { bytes, type }] of manifests) {
        const doc = JSON.parse(bytes.toString('utf8')) as Manifest;
        if (doc.subject?.digest !== rest) continue;
        const artifactType = doc.artifactType ?? doc.config.mediaType;
        if (wanted && artifactType !== wanted) continue;
        list.push({ mediaType: type, digest, size: bytes.length, artifactType, ...(doc.annotations ? { annotations: doc.annotations } : {}) });
      }
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: list }));
      return send(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', ...(wanted ? { 'oci-filters-applied': 'artifactType' } : {}) }, index);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    tags,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('a registry with the referrers API indexes the attestations itself: no fallback tag, found through the API', async (t) => {
  const registry = await fakeRegistry();
  t.teardown(() => registry.close());
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a' });
  const tag = `${registry.host}/team/app:1`;
  const r = await build({ context: p.context, cacheDir: p.cache, tags: [tag], push: true, attestAs: 'referrers', sourceDateEpoch: 1_700_000_000 });
  t.is(r.digest, r.images[0]!.digest);
  t.deepEqual([...registry.tags.keys()], ['team/app:1'], 'no sha256-<hex> fallback tag');
  t.true(registry.log.some((l) => l.startsWith(`GET /v2/team/app/referrers/${r.digest}`)));

  const client = new RegistryClient();
  t.teardown(() => client.close());
  const all = await client.referrers(tag, r.digest);
  t.is(all.via, 'api');
  t.deepEqual(all.descriptors.map((d) => d.artifactType).sort(), ['application/spdx+json', 'application/vnd.in-toto+json']);
  const sboms = await client.referrers(tag, r.digest, { artifactType: 'application/spdx+json' });
  t.is(sboms.descriptors.length, 1);

  const [sbom] = await readSbom(tag);
  t.is(sbom!.via, 'referrers');
  t.is(sbom!.image.digest, r.digest);
  const report = await verifyAttestations(tag);
  t.true(report.ok, report.problems.join('\n'));
  t.is(report.attestations.length, 2);
});
