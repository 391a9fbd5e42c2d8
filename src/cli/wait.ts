/**
 * `trellis wait`: blocks until a proxy reports ready (`/healthz/ready` answers 200), like Istio's
 * `pilot-agent wait`, so an application can be started after its sidecar
 * (`trellis wait && exec my-app`). Exit 0 when ready, 1 on timeout.
 */
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { parseDurationMs } from './proxy.ts';

export const verb: Verb = {
  summary: "wait until a proxy is ready (start an app after its sidecar)",
  async run(args) {
    const { values } = parseCli('wait', args, {
      url: { type: 'string' },
      'health-port': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    }, false);
    if (values.help) {
      process.stdout.write('usage: trellis wait [--health-port N | --url URL] [--timeout 60s]\n');
      return 0;
    }
    const url = values.url ?? `http://127.0.0.1:${values['health-port'] ?? '15021'}/healthz/ready`;
    const timeoutMs = values.timeout ? parseDurationMs(values.timeout) : 60_000;
    if (timeoutMs === undefined) throw new UsageError(`wait: --timeout must be a duration like 30s, got '${values.timeout}'`);
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await res.text();
        if (res.status === 200) return 0;
        last = `HTTP ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stderr.write(`trellis wait: ${url} not ready after ${timeoutMs} ms (last: ${last})\n`);
    return 1;
  },
};
