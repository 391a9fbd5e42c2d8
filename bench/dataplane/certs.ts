/**
 * Bench-generated certificates for the TLS hop between two proxies, made with openssl: one CA,
 * a server certificate (SAN DNS:bench-server, IP:127.0.0.1) and a client certificate (SAN
 * URI spiffe://cluster.local/ns/bench/sa/client), RSA 2048 like Istio's default workload keys.
 * Also writes the PEM bundles HAProxy wants (certificate followed by key).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** File paths of the generated material. */
export interface BenchCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  serverPem: string;
  clientCert: string;
  clientKey: string;
  clientPem: string;
  /** The name the client verifies (and sends as SNI). */
  serverName: string;
}

function run(openssl: string, args: string[], cwd: string): void {
  const r = spawnSync(openssl, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
}

/** Generates the CA, server and client certificates under `dir`. */
export function makeCerts(openssl: string, dir: string): BenchCerts {
  const f = (n: string) => join(dir, n);
  run(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/O=trellis-bench/CN=bench-ca'], dir);
  const leaf = (name: string, san: string, usage: string) => {
    writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n`);
    run(openssl, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=trellis-bench/CN=${name}`], dir);
    run(openssl, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
    writeFileSync(f(`${name}.bundle.pem`), readFileSync(f(`${name}.pem`), 'utf8') + readFileSync(f(`${name}.key`), 'utf8'));
  };
  leaf('server', 'DNS:bench-server,IP:127.0.0.1', 'serverAuth');
  leaf('client', 'URI:spiffe://cluster.local/ns/bench/sa/client,DNS:bench-client', 'clientAuth');
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    serverPem: f('server.bundle.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    clientPem: f('client.bundle.pem'),
    serverName: 'bench-server',
  };
}
