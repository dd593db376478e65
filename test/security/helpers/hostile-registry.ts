/**
 * A registry that lies, stalls and redirects, on loopback only. It serves one honest image
 * (config + one gzip layer) under Basic auth, and each test swaps in the misbehaviour it wants
 * through `route`. Every request it sees is recorded (method, URL, headers) so tests can check
 * what was sent where.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { sha256 } from '../../../src/image/digest.ts';
import { rawTar } from './hostile-tar.ts';

export const USER = 'ci-bot';
export const PASSWORD = 'S3cr3t-pa55word-9f2c1e';
export const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface HonestImage {
  layer: Buffer;
  layerDigest: string;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

export function honestImage(): HonestImage {
  const tar = rawTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', data: 'hello from the registry\n' }]);
  const layer = zlib.gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(tar)] }, history: [{ created_by: 'test' }] }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  return { layer, layerDigest: sha256(layer), config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest) };
}

/** A handler for one request; return false to fall through to the honest registry. */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, server: HostileServer) => boolean | Promise<boolean>;

export interface HostileServer {
  host: string;
  origin: string;
  seen: Seen[];
  image: HonestImage;
  /** Bytes the server managed to write in response bodies (by the routes that count them). */
  bytesSent: number;
  route?: Route;
  close(): Promise<void>;
}

/** Start a server on `address` (a loopback address). With `auth`, everything needs Basic credentials. */
export async function startHostileRegistry(options: { address?: string; auth?: boolean } = {}): Promise<HostileServer> {
  const image = honestImage();
  const sockets = new Set<import('node:net').Socket>();
  const state: HostileServer = {
    host: '',
    origin: '',
    seen: [],
    image,
    bytesSent: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer(async (req, res) => {
    state.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    req.resume();
    try {
      if (options.auth !== false && req.headers.authorization !== BASIC) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      if (state.route && (await state.route(req, res, state))) return;
      honest(req, res, image);
    } catch (err) {
      res.destroy(err as Error);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, options.address ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  state.host = `${options.address ?? '127.0.0.1'}:${port}`;
  state.origin = `http://${state.host}`;
  return state;
}

function honest(req: http.IncomingMessage, res: http.ServerResponse, image: HonestImage): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/v2/' || url.pathname === '/v2') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
    return;
  }
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
  if (m) {
    const [, , kind, id] = m;
    if (kind === 'manifests' && (id === 'latest' || id === image.manifestDigest)) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': image.manifestDigest, 'content-length': image.manifest.length });
      res.end(req.method === 'HEAD' ? undefined : image.manifest);
      return;
    }
    const blob = id === image.layerDigest ? image.layer : id === image.configDigest ? image.config : undefined;
    if (kind === 'blobs' && blob) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': id!, 'content-length': blob.length });
      res.end(req.method === 'HEAD' ? undefined : blob);
      return;
    }
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"errors":[{"code":"NOT_FOUND","message":"not here"}]}');
}
