/**
 * The Kubernetes flags of `trellis control` and what they become: read config and the service
 * registry from an API server (`--kubeconfig PATH` outside the cluster, `--kubernetes` for the
 * in-cluster service account), serve the admission webhook, register this revision's webhook
 * configurations, and write status. Kept apart from control.ts so the local mode's flags stay
 * readable; the same flags are what charts/trellis renders into the Deployment.
 */
import { hostname } from 'node:os';
import { UsageError } from './args.ts';
import { kubernetesFlags } from './commands-run.ts';
import type { KubernetesControlOptions } from '../control/kube/kube-control.ts';
import type { LabelSelector } from '../config/label-selector.ts';
import type { WebhookClient } from '../control/webhook/webhook-config.ts';
import { serviceHosts } from '../control/webhook/webhook-ca.ts';

/** Parsed like every flag of `trellis control`, from its spec (commands-run.ts). */
export const kubernetesOptions = kubernetesFlags;

type Values = { [K in keyof typeof kubernetesOptions]?: (typeof kubernetesOptions)[K]['type'] extends 'boolean' ? boolean : string };

/** `trellis` or `trellis-<revision>`: the Service name of a revision's control plane. */
export function revisionServiceName(revision: string): string {
  return revision === 'default' ? 'trellis' : `trellis-${revision}`;
}

/** The Kubernetes options, or undefined when neither --kubeconfig nor --kubernetes is given. */
export function kubernetesControlOptions(v: Values): KubernetesControlOptions | undefined {
  if (v.kubeconfig === undefined && !v.kubernetes) {
    const stray = Object.keys(kubernetesOptions).find((k) => v[k as keyof Values] !== undefined);
    if (stray !== undefined) throw new UsageError(`control: --${stray} needs --kubeconfig PATH or --kubernetes`);
    return undefined;
  }
  const revision = v.revision ?? 'default';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(revision) || revision.length > 40) throw new UsageError(`control: --revision must be a DNS label (e.g. 1-3), got '${revision}'`);
  const ns = v['system-namespace'] ?? 'trellis-system';
  let selectors: LabelSelector[] | undefined;
  if (v['discovery-selectors'] !== undefined) {
    try {
      selectors = JSON.parse(v['discovery-selectors']) as LabelSelector[];
      if (!Array.isArray(selectors)) throw new Error('not a list');
    } catch (err) {
      throw new UsageError(`control: --discovery-selectors must be a JSON list of label selectors: ${(err as Error).message}`);
    }
  }
  const port = v['no-webhook'] ? -1 : v['webhook-port'] === undefined ? 15017 : Number(v['webhook-port']);
  if (!Number.isInteger(port) || port < -1 || port > 65535) throw new UsageError(`control: --webhook-port must be 0..65535, got '${v['webhook-port']}'`);
  const svc = revisionServiceName(revision);
  let client: WebhookClient = { service: { namespace: ns, name: svc, port: 443 } };
  if (v['webhook-url'] !== undefined) {
    let u: URL;
    try {
      u = new URL(v['webhook-url']);
    } catch {
      throw new UsageError(`control: --webhook-url must be a URL, got '${v['webhook-url']}'`);
    }
    if (u.protocol !== 'https:') throw new UsageError('control: --webhook-url must be https (the API server calls webhooks over TLS only)');
    client = { url: u.origin };
  }
  const caPort = v['ca-tls-port'] === undefined ? 15012 : Number(v['ca-tls-port']);
  if (!Number.isInteger(caPort) || caPort < 0 || caPort > 65535) throw new UsageError(`control: --ca-tls-port must be 0..65535, got '${v['ca-tls-port']}'`);
  const caAddress = v['injection-ca-address'] ?? `${svc}.${ns}.svc:15012`;
  const caHost = /^\[?([^\]]+?)\]?:\d+$/.exec(caAddress)?.[1];
  if (caHost === undefined) throw new UsageError(`control: --injection-ca-address must be HOST:PORT, got '${caAddress}'`);
  const audiences = (v['ca-token-audiences'] ?? 'istio-ca').split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (audiences.length === 0) throw new UsageError('control: --ca-token-audiences needs at least one audience');
  const native = v['native-sidecars'] ?? 'auto';
  if (!['auto', 'true', 'false'].includes(native)) throw new UsageError(`control: --native-sidecars must be auto, true or false, got '${native}'`);
  return {
    kubeconfig: v.kubeconfig,
    revision,
    systemNamespace: ns,
    discoverySelectors: selectors,
    webhook: port < 0 ? undefined : { port, host: '0.0.0.0', client, validate: !v['no-validation'], validatesUnlabelled: v['validate-unlabelled'] || revision === 'default' },
    injection: {
      image: v['injection-image'] ?? 'trellis:0.1.0',
      xdsAddress: v['injection-xds'] ?? `${svc}.${ns}.svc:15010`,
      nativeSidecars: native === 'auto' ? 'auto' : native === 'true',
      holdApplicationUntilProxyStarts: v['hold-application-until-proxy-starts'] ?? false,
    },
    status: { enabled: !v['no-status'], analysis: v['analysis-status'] ?? false, identity: `${hostname()}-${process.pid}-${revision}` },
    ...(v['no-ca'] ? {} : {
      ca: {
        tlsPort: caPort, injectionAddress: caAddress, tokenAudiences: audiences,
        tlsHosts: [...new Set([...serviceHosts(svc, ns), caHost])],
      },
    }),
  };
}
