/**
 * The workload SDS server a stock Envoy sidecar reads its mesh identity from, as Istio's
 * pilot-agent serves it on a Unix socket: `envoy.service.secret.v3.SecretDiscoveryService/
 * StreamSecrets` (state of the world), answering `default` (the workload certificate chain and
 * key an IdentityAgent holds; the key is generated here and goes only to the local Envoy) and
 * `ROOTCA` (the root the certificate chains to; the mesh's full bundle reaches Envoy over ADS from
 * the control plane, as our translation asks). A renewed certificate is pushed on every open
 * stream; a NACK is logged and the stream keeps the last version. Names it does not hold are left
 * out of the response, which Envoy reads as "not (yet) available".
 */
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { sotwStreamMethod, type DiscoveryRequestMsg, type DiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import { toAny } from '../../xds/codec.ts';
import { TypeUrl, type XdsJson } from '../../xds/types.ts';
import type { IdentityAgent, WorkloadCertificate } from './identity-agent.ts';

/** Istio's SDS service path; Envoy's `api_config_source` with api_type GRPC calls StreamSecrets. */
export const sdsServiceDefinition: ServiceDefinition = {
  StreamSecrets: sotwStreamMethod('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', 'streamSecrets'),
};

const SecretType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** The Secret resources for a certificate, by name. */
export function workloadSecrets(cert: WorkloadCertificate): Map<string, XdsJson> {
  return new Map<string, XdsJson>([
    ['default', { '@type': SecretType, name: 'default', tls_certificate: { certificate_chain: { inline_string: cert.certChain }, private_key: { inline_string: cert.privateKey } } }],
    ['ROOTCA', { '@type': SecretType, name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: cert.root } } }],
  ]);
}

export interface SdsServer {
  /** Open StreamSecrets streams. */
  readonly streams: () => number;
  close(): Promise<void>;
}

type Stream = grpc.ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;

/** Serves `agent`'s certificate over SDS on the Unix socket `socketPath` (an old socket file is replaced). */
export async function startSdsServer(agent: Pick<IdentityAgent, 'current' | 'onChange'>, socketPath: string, log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void): Promise<SdsServer> {
  const server = new grpc.Server();
  const open = new Set<{ stream: Stream; names: string[]; push: () => void }>();
  let version = 0;
  let nonce = 0;
  server.addService(sdsServiceDefinition, {
    StreamSecrets(stream: Stream) {
      const st = { stream, names: [] as string[], sentVersion: -1, push: () => {} };
      const send = () => {
        const cert = agent.current;
        if (cert === undefined || st.names.length === 0) return;
        const secrets = workloadSecrets(cert);
        const resources = st.names.flatMap((n) => (secrets.has(n) ? [toAny(secrets.get(n)!)] : []));
        st.sentVersion = version;
        stream.write({ version_info: String(version), type_url: TypeUrl.Secret, nonce: String(++nonce), resources });
      };
      st.push = send;
      open.add(st);
      stream.on('data', (req: DiscoveryRequestMsg) => {
        if (req.error_detail !== undefined) {
          log?.('warn', 'sds: Envoy rejected a secret (NACK)', { error: req.error_detail.message, names: req.resource_names });
          return;
        }
        const names = [...(req.resource_names ?? [])].sort();
        const changed = names.join('\n') !== st.names.join('\n');
        st.names = names;
        // A first request, a new subscription, or an ACK of an old version: answer with the current one.
        if (changed || req.response_nonce === undefined || req.response_nonce === '' || st.sentVersion !== version) send();
      });
      const end = () => {
        open.delete(st);
        stream.end();
      };
      stream.on('end', end);
      stream.on('error', () => open.delete(st));
      stream.on('cancelled', () => open.delete(st));
    },
  });
  agent.onChange(() => {
    version++;
    for (const s of open) s.push();
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    streams: () => open.size,
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.stream.end();
      const t = setTimeout(() => server.forceShutdown(), 2000);
      server.tryShutdown(() => {
        clearTimeout(t);
        rmSync(socketPath, { force: true });
        resolve();
      });
    }),
  };
}
