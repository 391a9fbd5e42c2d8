/**
 * `trellis sample echo|demo`: runs one of the sample workloads (src/samples) in the foreground.
 * `trellis up` starts workloads with these commands; they are also handy on their own.
 * Flags win over the environment variables named in `--help` (the environment is how a
 * Workload's `env` reaches them).
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { sample as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { hostname } from 'node:os';

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
  async run(args) {
    const { values, positionals } = parseCommand(spec, args);
    const [kind, ...extra] = positionals;
    if (kind !== 'echo' && kind !== 'demo') throw new UsageError(`sample: expected 'echo' or 'demo', got '${kind ?? ''}' (see trellis sample --help)`);
    if (extra.length > 0) throw new UsageError(`sample: unexpected argument '${extra[0]}'`);
    const env = process.env;
    const port = Number(values.port ?? env.PORT ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`sample: --port must be 0..65535, got ${values.port ?? env.PORT}`);
    const host = values.host ?? env.HOST ?? '127.0.0.1';
    const namespace = values.namespace ?? env.NAMESPACE ?? 'default';
    if (kind === 'echo') {
      const { startEchoServer } = await import('../samples/echo-server.ts');
      const service = values.service ?? env.SERVICE_NAME ?? 'echo';
      const server = await startEchoServer({ host, port, namespace, service, pod: values.pod ?? env.POD_NAME ?? podName(service) });
      process.stdout.write(`echo listening on ${server.address}:${server.port}\n`);
      return waitForSignal(() => server.close());
    }
    const { startDemoService } = await import('../samples/demo-service.ts');
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
  },
};
