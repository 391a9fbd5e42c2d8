/**
 * `trellis capture`: installs the pod's traffic capture (Istio's nat rules: outbound TCP to 15001,
 * inbound to 15006, the proxy's uid 1337 and its own ports exempt) in the current network
 * namespace with iptables-restore. It is the injected init container's command, and applies the
 * very rules `trellis up --capture transparent` puts in each workload namespace
 * (src/runtime/netns.ts). `--dry-run` prints them instead.
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { capture as spec } from './commands-kube.ts';
import { parseCommand } from './spec.ts';
import { podIptablesRules, run, which } from '../runtime/netns.ts';

function ports(flag: string, v: string | undefined): number[] {
  if (v === undefined || v === '') return [];
  return v.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`capture: --${flag} takes ports 1..65535, got '${p}'`);
    return n;
  });
}

export const verb: Verb = {
  async run(args) {
    const { values } = parseCommand(spec, args);
    const rules = podIptablesRules({
      excludeInboundPorts: ports('exclude-inbound-ports', values['exclude-inbound-ports']),
      excludeOutboundPorts: ports('exclude-outbound-ports', values['exclude-outbound-ports']),
    });
    if (values['dry-run']) {
      process.stdout.write(rules);
      return 0;
    }
    if (which('iptables-restore') === undefined) {
      process.stderr.write('trellis capture: iptables-restore not found on PATH (the image needs the iptables package)\n');
      return 1;
    }
    await run('iptables-restore', [], { input: rules });
    process.stdout.write('trellis capture: traffic capture installed (inbound -> 15006, outbound -> 15001)\n');
    return 0;
  },
};
