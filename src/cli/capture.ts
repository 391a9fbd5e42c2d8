/**
 * `trellis capture`: installs the pod's traffic capture (Istio's nat rules: outbound TCP to 15001,
 * inbound to 15006, the proxy's uid 1337 and its own ports exempt) in the current network
 * namespace with iptables-restore. It is the injected init container's command, and applies the
 * very rules `trellis up --capture transparent` puts in each workload namespace
 * (src/runtime/netns.ts). `--dry-run` prints them instead.
 */
import { parseCli, UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { podIptablesRules, run, which } from '../runtime/netns.ts';

const HELP = `usage: trellis capture [--exclude-inbound-ports P,P] [--exclude-outbound-ports P,P] [--dry-run]

Installs the sidecar's traffic capture in this network namespace (needs NET_ADMIN): inbound TCP
is redirected to the proxy's 15006, outbound TCP to 15001; the proxy's own traffic (uid 1337)
and ports 15000, 15020, 15021, 15090 are left alone.
`;

function ports(flag: string, v: string | undefined): number[] {
  if (v === undefined || v === '') return [];
  return v.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`capture: --${flag} takes ports 1..65535, got '${p}'`);
    return n;
  });
}

export const verb: Verb = {
  summary: 'install the sidecar traffic capture (iptables) in this network namespace (init container)',
  async run(args) {
    const { values } = parseCli('capture', args, {
      'exclude-inbound-ports': { type: 'string' },
      'exclude-outbound-ports': { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, false);
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
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
