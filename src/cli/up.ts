/**
 * `trellis up`: runs a whole mesh on one machine. The runtime (control plane, gateway, sidecars,
 * workloads) lands with the `trellis up` issue; until then this says what is not built yet.
 */
import type { Verb } from './main.ts';

export const verb: Verb = {
  summary: 'run a whole mesh (control plane, gateway, sidecars, workloads) on this machine',
  async run(): Promise<number> {
    process.stderr.write(
      'trellis up: the local runtime is not built yet. Available now: `trellis analyze PATH...` ' +
        'to validate mesh config.\n',
    );
    return 1;
  },
};
