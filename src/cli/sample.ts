/**
 * `trellis sample echo|demo`: runs one of the sample workloads (src/samples) in the foreground.
 * `trellis up` starts workloads with these commands; they are also handy on their own.
 * Flags win over the environment variables named in `--help` (the environment is how a
 * Workload's `env` reaches them).
 */
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { startEchoServer } from '../samples/echo-server.ts';
import { startDemoService } from '../samples/demo-service.ts';
import { hostname } from 'node:os';

const help = `usage:
  trellis sample echo [--port N] [--host H] [--namespace NS] [--service S] [--pod P]
  trellis sample demo --name NAME [--version V] [--port N] [--upstream URL]... 

environment (flags win): PORT, HOST, NAMESPACE, SERVICE_NAME, POD_NAME, SERVICE_VERSION,
UPSTREAMS (comma-separated URLs), FAIL_PERCENT, FAIL_STATUS, DELAY_MS, HTTP_PROXY.
`;

function podName(base: string): string {
  const rand = () => Math.random().toString(36).slice(2, 7).padEnd(5, 'x');
  return `${base}-${rand()}${rand().slice(0, 5)}-${rand()}`;
}

function waitForSignal(close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => void close().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export const verb: Verb = {
  summary: 'run a sample workload (echo server, demo service)',
  async run(args) {
    const [kind, ...rest] = args;
    const { values } = parseCli('sample', rest, {
      port: { type: 'string' },
      host: { type: 'string' },
      namespace: { type: 'string' },
      service: { type: 'string' },
      pod: { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const env = process.env;
    const port = Number(values.port ?? env.PORT ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`sample: --port must be 0..65535, got ${values.port ?? env.PORT}`);
    const host = values.host ?? env.HOST ?? '127.0.0.1';
    const namespace = values.namespace ?? env.NAMESPACE ?? 'default';
    if (kind === 'echo') {
      const service = values.service ?? env.SERVICE_NAME ?? 'echo';
      const server = await startEchoServer({ host, port, namespace, service, pod: values.pod ?? env.POD_NAME ?? podName(service) });
      process.stdout.write(`echo listening on ${server.address}:${server.port}\n`);
      return waitForSignal(() => server.close());
    }
    if (kind === 'demo') {
      const name = values.name ?? env.SERVICE_NAME;
      if (!name) throw new UsageError('sample demo: --name (or SERVICE_NAME) is required');
      const upstreams = values.upstream ?? (env.UPSTREAMS ? env.UPSTREAMS.split(',').map((s) => s.trim()).filter(Boolean) : []);
      const server = await startDemoService({
        name,
        version: values.version ?? env.SERVICE_VERSION ?? 'v1',
        namespace,
        pod: values.pod ?? env.POD_NAME ?? `${name}-${hostname()}`,
        host,
        port,
        upstreams,
        failPercent: Number(env.FAIL_PERCENT ?? 0),
        failStatus: env.FAIL_STATUS ? Number(env.FAIL_STATUS) : undefined,
        delayMs: Number(env.DELAY_MS ?? 0),
        httpProxy: env.HTTP_PROXY ?? env.http_proxy,
      });
      process.stdout.write(`${name} listening on ${server.address}:${server.port}\n`);
      return waitForSignal(() => server.close());
    }
    throw new UsageError(`sample: expected 'echo' or 'demo', got '${kind ?? ''}'\n${help}`);
  },
};
