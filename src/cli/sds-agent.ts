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
import { UsageError } from './args.ts';
import { sdsAgent as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import type { Verb } from './main.ts';
import { IdentityAgent, tokenFromFile } from '../proxy/tls/identity-agent.ts';
import { startSdsServer } from '../proxy/tls/sds-server.ts';
import { parseKeyAlgorithm } from '../pki/keys.ts';
import { parseDurationMs } from '../config/schema/values.ts';

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values } = parseCommand(spec, args);
    if (values.socket === undefined) throw new UsageError('sds-agent: --socket PATH is required');
    const envToken = process.env.TRELLIS_CA_TOKEN;
    if (values['ca-token-file'] === undefined && (envToken === undefined || envToken === '')) throw new UsageError('sds-agent: --ca-token-file FILE (or TRELLIS_CA_TOKEN) is required');
    const ttl = values['cert-ttl'] !== undefined ? parseDurationMs(values['cert-ttl']) : 0;
    if (ttl === undefined || (values['cert-ttl'] !== undefined && ttl < 1000)) throw new UsageError(`sds-agent: --cert-ttl must be a duration like 24h or 60s, got '${values['cert-ttl']}'`);
    const ns = values.namespace;
    const sa = values['service-account'];
    const spiffeId = `spiffe://${values['trust-domain']}/ns/${ns}/sa/${sa}`;
    const log = pino({ level: values['log-level'], base: { component: 'sds-agent', spiffeId } }, pino.destination(2));
    const say = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => log[level](fields ?? {}, msg);
    const agent = new IdentityAgent({
      caAddress: values.ca,
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
