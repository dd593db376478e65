/**
 * A loopback reverse proxy in front of a registry: records every request (method, path, body
 * bytes, status) and can inject faults: answer with a status instead, drop the connection, or cut
 * a request body after some bytes. The Host header is kept, so the registry's Locations point
 * back at the proxy.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  n: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  status?: number;
  fault?: string;
}

export type Fault =
  | undefined
  | { status: number; headers?: Record<string, string>; body?: string }
  | { drop: true }
  | { cutAfterBytes: number };

export interface Proxy {
  host: string;
  url: string;
  requests: RecordedRequest[];
  fault: ((req: RecordedRequest) => Fault) | undefined;
  /** Sum of request body bytes sent to blob upload endpoints. */
  uploadedBytes(): number;
  stop(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const targetUrl = new URL(target);
  const requests: RecordedRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const proxy: Proxy = {
    host: '',
    url: '',
    requests,
    fault: undefined,
    uploadedBytes: () => requests.filter((r) => r.path.includes('/blobs/uploads/')).reduce((a, r) => a + r.bodyBytes, 0),
    stop: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const rec: RecordedRequest = { n: requests.length + 1, method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, bodyBytes: 0 };
    requests.push(rec);
    const fault = proxy.fault?.(rec);
    if (fault && 'drop' in fault) {
      rec.fault = 'drop';
      req.socket.destroy();
      return;
    }
    if (fault && 'status' in fault) {
      rec.fault = `status ${fault.status}`;
      rec.status = fault.status;
      req.on('data', (d: Buffer) => (rec.bodyBytes += d.length));
      req.on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
      });
      return;
    }
    const upstream = http.request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        rec.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    const cut = fault && 'cutAfterBytes' in fault ? fault.cutAfterBytes : undefined;
    if (cut !== undefined) rec.fault = `cut after ${cut}`;
    req.on('data', (d: Buffer) => {
      if (cut !== undefined && rec.bodyBytes + d.length > cut) {
        const part = d.subarray(0, Math.max(0, cut - rec.bodyBytes));
        rec.bodyBytes += part.length;
        upstream.write(part, () => {
          // Both halves go down, as when a network drops mid-request.
          upstream.destroy();
          req.socket.destroy();
        });
        return;
      }
      rec.bodyBytes += d.length;
      upstream.write(d);
    });
    req.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  proxy.host = `127.0.0.1:${port}`;
  proxy.url = `http://127.0.0.1:${port}`;
  return proxy;
}
