/**
 * Specs (flags, help, reference docs) of the verbs for running on Kubernetes: `capture` (the
 * injected init container), `tag` (revision tags) and `manifest` (the control plane as objects).
 * Plain data; see spec.ts.
 */
import type { CommandSpec } from './spec.ts';

export const capture = {
  name: 'capture',
  summary: 'install the sidecar traffic capture (iptables) in this network namespace (init container)',
  usage: ['capture [--exclude-inbound-ports P,P] [--exclude-outbound-ports P,P] [--dry-run]'],
  description: "Installs the sidecar's traffic capture in the current network namespace with iptables-restore (needs NET_ADMIN): inbound TCP is redirected to the proxy's 15006, outbound TCP to 15001; the proxy's own traffic (uid 1337) and ports 15000, 15020, 15021, 15090 are left alone. It is the injected init container's command, and the very rules `trellis up --capture transparent` puts in each workload namespace.",
  options: {
    'exclude-inbound-ports': { type: 'string', value: 'P,P', help: 'inbound ports not to capture (Istio annotation traffic.sidecar.istio.io/excludeInboundPorts)' },
    'exclude-outbound-ports': { type: 'string', value: 'P,P', help: 'outbound ports not to capture (traffic.sidecar.istio.io/excludeOutboundPorts)' },
    'dry-run': { type: 'boolean', help: 'print the rules instead of installing them' },
  },
  allowPositionals: false,
} as const satisfies CommandSpec;

export const tag = {
  name: 'tag',
  summary: 'point a revision tag (istio.io/rev=TAG namespaces) at a control plane revision',
  usage: ['tag set TAG --revision R [--kubeconfig PATH]', 'tag remove TAG [--kubeconfig PATH]', 'tag list [--kubeconfig PATH]'],
  description: "Revision tags, as `istioctl tag` has them: namespaces labelled istio.io/rev=TAG get their sidecars from the revision TAG points at. `set` creates the tag or moves it (rollback = set it back); new pods get the new revision, running pods keep theirs until restarted.",
  options: {
    revision: { type: 'string', value: 'R', help: 'set: the control plane revision the tag points at' },
    kubeconfig: { type: 'string', value: 'PATH', help: 'the cluster (default: $KUBECONFIG, else ~/.kube/config)' },
  },
  allowPositionals: true,
  exitStatus: '0 done, 1 the revision or tag does not exist or the API refused, 2 usage error.',
} as const satisfies CommandSpec;

export const manifest = {
  name: 'manifest',
  summary: 'print the control plane of a revision as Kubernetes objects (kubectl apply -f -)',
  usage: ['manifest [--revision R] [--namespace NS] [--image IMAGE] [--replicas N] [--hold-application-until-proxy-starts] [--validate-unlabelled]'],
  description: "Prints the control plane's Kubernetes objects (ServiceAccount, RBAC, Deployment, Service, PDB, HPA, webhook configurations) of one revision as multi-document YAML for `kubectl apply -f -`: the objects charts/trellis renders with the same values. Install the CRDs first (charts/trellis-base).",
  options: {
    revision: { type: 'string', value: 'R', help: 'control plane revision, a DNS label (default default)' },
    namespace: { type: 'string', value: 'NS', help: 'namespace of the control plane (default trellis-system)' },
    image: { type: 'string', value: 'IMAGE', help: 'control plane image (default trellis:0.1.0)' },
    replicas: { type: 'string', value: 'N', help: 'Deployment replicas (default 2)' },
    'hold-application-until-proxy-starts': { type: 'boolean', help: 'injected pods start their app containers after the proxy is ready' },
    'validate-unlabelled': { type: 'boolean', help: 'also validate objects without an istio.io/rev label' },
  },
  allowPositionals: false,
} as const satisfies CommandSpec;
