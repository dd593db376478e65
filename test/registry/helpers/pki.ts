/**
 * Test certificates made with openssl: a CA and a server certificate for 127.0.0.1/localhost (for
 * a TLS registry), and a self-signed key pair for the token issuer that the registry trusts
 * through `rootcertbundle`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface TestPki {
  dir: string;
  /** A folder holding only ca.crt (for skopeo --cert-dir). */
  caDir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  tokenCert: string;
  tokenKey: string;
  remove(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

export async function makePki(): Promise<TestPki> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-pki-'));
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=lading test CA'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  await fs.writeFile(
    path.join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=lading test token issuer'], dir);
  // skopeo's --cert-dir takes every *.key as a client key: give it a folder with the CA alone.
  await fs.mkdir(path.join(dir, 'ca-only'));
  await fs.copyFile(path.join(dir, 'ca.crt'), path.join(dir, 'ca-only', 'ca.crt'));
  return {
    dir,
    caDir: path.join(dir, 'ca-only'),
    caCert: path.join(dir, 'ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    tokenCert: path.join(dir, 'token.crt'),
    tokenKey: path.join(dir, 'token.key'),
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
