/**
 * `trellis down`: stops what `trellis up` started from a state dir (default .trellis): the
 * supervisor first (it stops workloads, sidecars, gateway and control plane in order), then any
 * process group still alive (after a supervisor crash), removes transparent mode's network
 * namespaces and bridge, and checks every recorded port is free and nothing of the network is left.
 * Idempotent: nothing running is success.
 */
import { parseCli } from './args.ts';
import type { Verb } from './main.ts';
import { teardown } from '../runtime/teardown.ts';

const HELP = `usage: trellis down [--state-dir DIR]

Stops the mesh started by \`trellis up\` (default state dir .trellis) and removes what it left behind.
`;

export const verb: Verb = {
  summary: 'stop everything `trellis up` started and clean up',
  async run(args: string[]): Promise<number> {
    const { values } = parseCli('down', args, {
      'state-dir': { type: 'string', default: '.trellis' },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    }, false);
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const log = values.quiet ? () => {} : (line: string) => process.stdout.write(`trellis down: ${line}\n`);
    const r = await teardown(values['state-dir'], log);
    if (!r.found) {
      process.stdout.write(`trellis down: nothing is running (no state in ${values['state-dir']})\n`);
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
