/**
 * `trellis sds-agent`: the identity agent for a stock Envoy sidecar, as Istio's pilot-agent is for
 * its Envoy. It generates the workload key here, gets the SPIFFE certificate from the mesh CA by
 * CSR (the workload token proves who it is), renews it at half-life, and serves `default` and
 * `ROOTCA` over SDS on a Unix socket. Envoy's bootstrap names that socket as the `sds-grpc` cluster
 * (Istio's name, which our translation refers to for the workload certificate); the trust bundle
 * and everything else come from the control plane over ADS.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { pino } from 'pino';
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { IdentityAgent, tokenFromFile } from '../proxy/tls/identity-agent.ts';
import { startSdsServer } from '../proxy/tls/sds-server.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import { parseDurationMs } from '../config/schema/values.ts';

const help = `usage: trellis sds-agent --socket PATH --ca-token-file FILE [options]

Gets the workload's mesh certificate for a stock Envoy and serves it over SDS (Istio's
pilot-agent role): Envoy's bootstrap points its \`sds-grpc\` cluster at --socket.

  --socket PATH             Unix socket to serve SDS on (Istio: ./var/run/secrets/workload-spiffe-uds/socket)
  --ca HOST:PORT            the mesh CA (the control plane's xDS port; default 127.0.0.1:15010)
  --ca-token-file FILE      the workload token (or env TRELLIS_CA_TOKEN)
  --namespace NS            workload namespace (default default)
  --service-account SA      service account (default default)
  --trust-domain TD         SPIFFE trust domain (default cluster.local)
  --node-id ID              sent to the CA for its status (default sds-agent~<ns>~<sa>)
  --cert-ttl DURATION       certificate lifetime to ask for (default: the CA's)
  --key-algorithm ALG       ECDSA_P256 (default) or RSA_2048
  --ready-file PATH         JSON written once the first certificate is held and the socket serves
  --log-level LEVEL         debug|info|warn|error (default info)
`;

export const verb: Verb = {
  summary: 'serve a stock Envoy its mesh certificate over SDS (what pilot-agent does)',
  async run(args: string[]): Promise<number> {
    const { values } = parseCli('sds-agent', args, {
      socket: { type: 'string' },
      ca: { type: 'string' },
      'ca-token-file': { type: 'string' },
      namespace: { type: 'string' },
      'service-account': { type: 'string' },
      'trust-domain': { type: 'string' },
      'node-id': { type: 'string' },
      'cert-ttl': { type: 'string' },
      'key-algorithm': { type: 'string' },
      'ready-file': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    if (values.socket === undefined) throw new UsageError('sds-agent: --socket PATH is required');
    const envToken = process.env.TRELLIS_CA_TOKEN;
    if (values['ca-token-file'] === undefined && (envToken === undefined || envToken === '')) throw new UsageError('sds-agent: --ca-token-file FILE (or TRELLIS_CA_TOKEN) is required');
    const ttl = values['cert-ttl'] !== undefined ? parseDurationMs(values['cert-ttl']) : 0;
    if (ttl === undefined || (values['cert-ttl'] !== undefined && ttl < 1000)) throw new UsageError(`sds-agent: --cert-ttl must be a duration like 24h or 60s, got '${values['cert-ttl']}'`);
    const ns = values.namespace ?? 'default';
    const sa = values['service-account'] ?? 'default';
    const spiffeId = `spiffe://${values['trust-domain'] ?? 'cluster.local'}/ns/${ns}/sa/${sa}`;
    const log = pino({ level: values['log-level'] ?? 'info', base: { component: 'sds-agent', spiffeId } }, pino.destination(2));
    const say = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => log[level](fields ?? {}, msg);
    const agent = new IdentityAgent({
      caAddress: values.ca ?? '127.0.0.1:15010',
      token: values['ca-token-file'] !== undefined ? tokenFromFile(values['ca-token-file']) : () => envToken!,
      spiffeId,
      nodeId: values['node-id'] ?? `sds-agent~${ns}~${sa}`,
      ttlSeconds: Math.round(ttl / 1000),
      ...(values['key-algorithm'] !== undefined ? { keyAlgorithm: parseKeyAlgorithm(values['key-algorithm']) } : {}),
      log: say,
    });
    const sds = await startSdsServer(agent, values.socket, say);
    agent.start();
    await agent.ready;
    if (values['ready-file'] !== undefined) {
      const tmp = `${values['ready-file']}.tmp`;
      writeFileSync(tmp, JSON.stringify({ socket: values.socket, spiffeId, pid: process.pid }) + '\n');
      renameSync(tmp, values['ready-file']);
    }
    say('info', 'serving SDS', { socket: values.socket });
    return new Promise<number>((resolve) => {
      const stop = () => {
        agent.stop();
        void sds.close().then(() => resolve(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
