/**
 * A stand-in registry for behaviours CNCF Distribution does not have but registries users push to
 * do: relative Locations carrying a query, single-use Locations (GCR), PATCH answered 201 or with
 * a Range that does not advance (ECR), a minimum chunk size (ECR), no chunked uploads at all, a
 * request size cap, read-after-write lag on manifests, HEAD on blobs refused with 401 (ECR
 * Public), repositories that must exist first and immutable tags (ECR, Harbor).
 *
 * Test scaffolding: in memory, small blobs only, one bearer token. The main push/pull tests run
 * against the real registry; this one answers only for the quirks.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Quirks {
  /** Locations without scheme and host. */
  relativeLocation?: boolean;
  /** Locations carrying `?_state=…` that must come back intact. */
  locationQuery?: boolean;
  /** Each Location works once; the answer names the next. */
  singleUseLocations?: boolean;
  /** Status for an accepted PATCH (202 by the spec; some answer 201 or 204). */
  patchStatus?: number;
  /** Range header stuck at the first chunk (ECR). */
  staleRange?: boolean;
  /** OCI-Chunk-Min-Length; smaller non-final chunks make the final PUT fail. */
  minChunk?: number;
  /** PATCH refused with this status (405, 501): monolithic uploads only. */
  noChunked?: number;
  /** Requests with larger bodies get 413. */
  maxBody?: number;
  /** Milliseconds a pushed manifest stays invisible; an index naming an invisible child is refused. */
  manifestLag?: number;
  /** HEAD on blobs answers 401 whatever the token; GET works. */
  headBlob401?: boolean;
  /** Only these repositories exist; uploads to others get NAME_UNKNOWN. */
  repositories?: string[];
  /** A tag once written cannot be written again. */
  immutableTags?: boolean;
  /** Require `Authorization: Bearer <token>` from /token. */
  bearer?: boolean;
}

interface Upload {
  repo: string;
  chunks: Buffer[];
  size: number;
  chunkSizes: number[];
  state: string;
  location: string;
}

export interface QuirkyRegistry {
  host: string;
  url: string;
  log: { method: string; path: string; status: number; bodyBytes: number; contentRange?: string }[];
  blobs: Map<string, Buffer>;
  stop(): Promise<void>;
}

const TOKEN = 'quirky-token';

export async function startQuirkyRegistry(q: Quirks): Promise<QuirkyRegistry> {
  const blobs = new Map<string, Buffer>();
  const blobRepos = new Map<string, Set<string>>();
  const uploads = new Map<string, Upload>();
  const manifests = new Map<string, { bytes: Buffer; type: string; digest: string; visibleAt: number }>();
  const log: QuirkyRegistry['log'] = [];
  let origin = '';

  const send = (res: http.ServerResponse, status: number, headers: Record<string, string> = {}, body?: unknown) => {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
    return status;
  };
  const err = (res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { 'content-type': 'application/json', ...headers }, { errors: [{ code, message }] });
  const challenge = (repo: string) => ({ 'www-authenticate': `Bearer realm="${origin}/token",service="quirky",scope="repository:${repo}:pull,push"` });
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  function uploadLocation(u: Upload): string {
    u.state = randomUUID().slice(0, 8);
    const id = q.singleUseLocations ? `${u.location.split('/').pop()!.split('?')[0]!.split('.')[0]}.${u.state}` : u.location.split('/').pop()!.split('?')[0]!;
    const path = `/v2/${u.repo}/blobs/uploads/${id}${q.locationQuery ? `?_state=${encodeURIComponent(`${u.state}==`)}` : ''}`;
    u.location = path;
    return q.relativeLocation ? path : `${origin}${path}`;
  }

  function findUpload(res: http.ServerResponse, repo: string, id: string, url: URL): Upload | undefined {
    const key = id.split('.')[0]!;
    const u = uploads.get(key);
    if (!u || u.repo !== repo) {
      err(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
      return undefined;
    }
    if (q.singleUseLocations && id !== `${key}.${u.state}`) {
      err(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'stale upload location (single use)');
      return undefined;
    }
    if (q.locationQuery && url.searchParams.get('_state') !== `${u.state}==`) {
      err(res, 400, 'BLOB_UPLOAD_INVALID', `the _state query came back as ${String(url.searchParams.get('_state'))}`);
      return undefined;
    }
    return u;
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): number {
    const url = new URL(req.url ?? '/', origin);
    const method = req.method ?? 'GET';
    if (url.pathname === '/token') return send(res, 200, { 'content-type': 'application/json' }, { token: TOKEN, expires_in: 300 });
    const authorized = !q.bearer || req.headers.authorization === `Bearer ${TOKEN}`;
    if (url.pathname === '/v2/') return authorized ? send(res, 200, {}, '{}') : err(res, 401, 'UNAUTHORIZED', 'authentication required', challenge(''));
    let m = /^\/v2\/(.+)\/(blobs|manifests)\/(.+)$/.exec(url.pathname);
    const up = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(url.pathname);
    if (up) m = null;
    const repo = (up ?? m)?.[1] ?? '';
    if (!authorized) return err(res, 401, 'UNAUTHORIZED', 'authentication required', challenge(repo));
    if (q.maxBody !== undefined && body.length > q.maxBody) return err(res, 413, 'SIZE_INVALID', `request larger than ${q.maxBody} bytes`);
    if (q.repositories && !q.repositories.includes(repo)) return err(res, 404, 'NAME_UNKNOWN', `The repository with name '${repo}' does not exist in the registry with id '123456789012'`);

    if (up) {
      const id = up[2]!;
      if (method === 'POST' && id === '') {
        const mount = url.searchParams.get('mount');
        const from = url.searchParams.get('from');
        if (mount && from && blobRepos.get(mount)?.has(from)) {
          blobRepos.get(mount)!.add(repo);
          return send(res, 201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount });
        }
        const u: Upload = { repo, chunks: [], size: 0, chunkSizes: [], state: '', location: `/${randomUUID()}` };
        uploads.set(u.location.slice(1), u);
        const headers: Record<string, string> = { location: uploadLocation(u), range: '0-0' };
        if (q.minChunk) headers['oci-chunk-min-length'] = String(q.minChunk);
        return send(res, 202, headers);
      }
      const u = findUpload(res, repo, id, url);
      if (!u) return 404;
      if (method === 'GET') return send(res, 204, { location: uploadLocation(u), range: `0-${Math.max(0, u.size - 1)}` });
      if (method === 'PATCH') {
        if (q.noChunked) return err(res, q.noChunked, 'UNSUPPORTED', 'chunked uploads are not supported');
        const cr = req.headers['content-range'];
        const start = cr ? Number(String(cr).split('-')[0]) : u.size;
        if (start !== u.size) return send(res, 416, { range: `0-${u.size - 1}`, location: u.location });
        u.chunks.push(body);
        u.chunkSizes.push(body.length);
        u.size += body.length;
        const reported = q.staleRange ? u.chunkSizes[0]! - 1 : u.size - 1;
        return send(res, q.patchStatus ?? 202, { location: uploadLocation(u), range: `0-${reported}` });
      }
      if (method === 'PUT') {
        const digest = url.searchParams.get('digest');
        if (!digest) return err(res, 400, 'DIGEST_INVALID', 'no digest parameter');
        if (body.length) {
          u.chunks.push(body);
          u.chunkSizes.push(body.length);
          u.size += body.length;
        }
        if (q.minChunk && u.chunkSizes.slice(0, -1).some((s) => s < q.minChunk!)) {
          return err(res, 400, 'BLOB_UPLOAD_INVALID', `chunks must be at least ${q.minChunk} bytes except the last`);
        }
        const data = Buffer.concat(u.chunks);
        if (sha(data) !== digest) return err(res, 400, 'DIGEST_INVALID', `provided digest did not match uploaded content (got ${sha(data)})`);
        blobs.set(digest, data);
        if (!blobRepos.has(digest)) blobRepos.set(digest, new Set());
        blobRepos.get(digest)!.add(repo);
        uploads.delete(id.split('.')[0]!);
        return send(res, 201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest });
      }
      return err(res, 405, 'UNSUPPORTED', 'method not allowed');
    }

    if (m && m[2] === 'blobs') {
      const digest = m[3]!;
      const data = blobRepos.get(digest)?.has(repo) ? blobs.get(digest) : undefined;
      if (method === 'HEAD' && q.headBlob401) return err(res, 401, 'UNAUTHORIZED', 'not authorized', challenge(repo));
      if (!data) return err(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      if (method === 'HEAD') return send(res, 200, { 'content-length': String(data.length), 'docker-content-digest': digest });
      res.writeHead(200, { 'content-length': String(data.length), 'docker-content-digest': digest });
      res.end(data);
      return 200;
    }

    if (m && m[2] === 'manifests') {
      const key = `${repo}@${m[3]}`;
      if (method === 'PUT') {
        const digest = sha(body);
        const type = String(req.headers['content-type']);
        const doc = JSON.parse(body.toString()) as { manifests?: { digest: string }[]; layers?: { digest: string }[] };
        for (const child of doc.manifests ?? []) {
          const c = manifests.get(`${repo}@${child.digest}`);
          if (!c || c.visibleAt > Date.now()) return err(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${child.digest}`);
        }
        for (const l of doc.layers ?? []) if (!blobRepos.get(l.digest)?.has(repo)) return err(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown: ${l.digest}`);
        const existing = manifests.get(key);
        if (q.immutableTags && existing && !m[3]!.includes(':')) {
          return err(res, 400, 'TAG_INVALID', `The image tag '${m[3]}' already exists in the '${repo}' repository and cannot be overwritten because the repository is immutable.`);
        }
        const entry = { bytes: body, type, digest, visibleAt: Date.now() + (q.manifestLag ?? 0) };
        manifests.set(key, entry);
        manifests.set(`${repo}@${digest}`, entry);
        return send(res, 201, { 'docker-content-digest': digest, location: `/v2/${repo}/manifests/${digest}` });
      }
      const entry = manifests.get(key);
      if (!entry || entry.visibleAt > Date.now()) return err(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      if (method === 'HEAD') return send(res, 200, { 'content-type': entry.type, 'docker-content-digest': entry.digest, 'content-length': String(entry.bytes.length) });
      res.writeHead(200, { 'content-type': entry.type, 'docker-content-digest': entry.digest, 'content-length': String(entry.bytes.length) });
      res.end(entry.bytes);
      return 200;
    }
    return err(res, 404, 'NOT_FOUND', 'not found');
  }

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const status = handle(req, res, body);
      log.push({ method: req.method ?? '', path: req.url ?? '', status, bodyBytes: body.length, ...(req.headers['content-range'] ? { contentRange: String(req.headers['content-range']) } : {}) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    url: origin,
    log,
    blobs,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
