/**
 * `trellis wait`: blocks until a proxy reports ready (`/healthz/ready` answers 200), like Istio's
 * `pilot-agent wait`, so an application can be started after its sidecar
 * (`trellis wait && exec my-app`). Exit 0 when ready, 1 on timeout.
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { wait as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { parseDurationMs } from '../config/schema/values.ts';

export const verb: Verb = {
  async run(args) {
    const { values } = parseCommand(spec, args);
    const url = values.url ?? `http://127.0.0.1:${values['health-port']}/healthz/ready`;
    const timeoutMs = parseDurationMs(values.timeout);
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
