/**
 * `trellis down`: stops what `trellis up` started from a state dir (default .trellis): the
 * supervisor first (it stops workloads, sidecars, gateway and control plane in order), then any
 * process group still alive (after a supervisor crash), removes transparent mode's network
 * namespaces and bridge, and checks every recorded port is free and nothing of the network is left.
 * Idempotent: nothing running is success.
 */
import type { Verb } from './main.ts';
import { down as spec } from './commands-run.ts';
import { parseCommand } from './spec.ts';
import { teardown } from '../runtime/teardown.ts';
import { resolveStateDir } from '../runtime/meshes.ts';

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values } = parseCommand(spec, args);
    const { stateDir, source } = resolveStateDir(values['state-dir'], { requireLive: false });
    const log = values.quiet ? () => {} : (line: string) => process.stdout.write(`trellis down: ${line}\n`);
    if (source === 'list') log(`the mesh running from ${stateDir}`);
    const r = await teardown(stateDir, log);
    if (!r.found) {
      process.stdout.write(`trellis down: nothing is running (no state in ${stateDir})\n`);
      return 0;
    }
    if (r.leftovers.length > 0) {
      process.stderr.write(`trellis down: stopped, but these network namespaces / interfaces are still present: ${r.leftovers.join(', ')}\n`);
      return 1;
    }
    if (r.busyPorts.length > 0) {
      process.stderr.write(`trellis down: stopped, but these ports still accept connections: ${r.busyPorts.join(', ')} (something else may hold them)\n`);
      return 1;
    }
    process.stdout.write('trellis down: everything stopped; all ports free\n');
    return 0;
  },
};
