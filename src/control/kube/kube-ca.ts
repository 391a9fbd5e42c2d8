/**
 * The mesh CA of a control plane on Kubernetes, as istiod runs its own: the signing material from
 * the control plane namespace's Secrets (`cacerts`, else a self-signed `istio-ca-secret`:
 * ca-secret.ts) unless a CA directory was given, callers authenticated by their projected
 * service-account tokens through the TokenReview API (token-review.ts, audience `istio-ca`), the
 * gRPC services on a TLS port (15012) whose certificate the CA issues for the names proxies dial,
 * and the trust bundle published to every namespace as `istio-ca-root-cert`
 * (root-cert-publisher.ts), which injected proxies mount to verify that port.
 */
import type { ControlPlane, ControlPlaneCaOptions, ControlLogger } from '../control-plane.ts';
import type { KubeRest } from '../../config/store/kubernetes-rest.ts';
import type { LabelSelector } from '../../config/label-selector.ts';
import { serveOverTls, TlsCallMark } from '../ca/ca-tls.ts';
import { KubernetesCaSource } from './ca-secret.ts';
import { kubeTokenReviewer, tokenReviewAuthenticator } from './token-review.ts';
import { startRootCertPublisher } from './root-cert-publisher.ts';

/** What `trellis control --kubeconfig/--kubernetes` asks of the CA. */
export interface KubernetesCaOptions {
  /** TLS port for ADS and CreateCertificate (Istio's 15012); 0 = any free port, -1 = none. */
  readonly tlsPort: number;
  /** DNS names and addresses on the TLS certificate (the revision's Service names, the injected CA address's host). */
  readonly tlsHosts: readonly string[];
  /** Audiences a service-account token must carry (Istio's `istio-ca`). */
  readonly tokenAudiences: readonly string[];
  /** `host:port` injected proxies use for the CA (Istio's CA_ADDR). */
  readonly injectionAddress: string;
}

/**
 * The control plane's CA options on Kubernetes: Secret material (unless `base` names a directory)
 * and TokenReview, which takes tokens only on calls `mark` (the TLS port's) vouches for.
 */
export function kubernetesCaOptions(rest: KubeRest, k: KubernetesCaOptions, base: ControlPlaneCaOptions, systemNamespace: string, log?: ControlLogger): { ca: ControlPlaneCaOptions; mark: TlsCallMark } {
  const fromFiles = base.dir !== undefined || base.source !== undefined;
  const mark = new TlsCallMark();
  return {
    mark,
    ca: {
      ...base,
      ...(fromFiles ? {} : { source: new KubernetesCaSource({ rest, namespace: systemNamespace, log: (level, msg, fields) => log?.[level](fields ?? {}, msg) }) }),
      authenticators: [...(base.authenticators ?? []), tokenReviewAuthenticator({ review: kubeTokenReviewer(rest), audiences: k.tokenAudiences, ...(k.tlsPort >= 0 ? { tls: mark } : {}) })],
    },
  };
}

/** Starts what the CA needs besides signing: the TLS port and the root ConfigMaps. */
export async function startKubernetesCaServices(o: {
  cp: ControlPlane;
  rest: KubeRest;
  k: KubernetesCaOptions;
  mark: TlsCallMark;
  host: string;
  systemNamespace: string;
  identity: string;
  discoverySelectors?: readonly LabelSelector[];
  log?: ControlLogger;
}): Promise<{ tlsPort: number; close(): Promise<void> }> {
  const ca = o.cp.ca;
  if (ca === undefined) return { tlsPort: 0, close: async () => {} };
  const logAt = (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => o.log?.[level](fields ?? {}, msg);
  const tls = o.k.tlsPort < 0 ? undefined : await serveOverTls({ server: o.cp.xds.grpcServer, ca, host: o.host, port: o.k.tlsPort, hosts: o.k.tlsHosts, mark: o.mark, log: logAt });
  const publisher = startRootCertPublisher({
    rest: o.rest, bundle: () => ca.trustBundle(), systemNamespace: o.systemNamespace, identity: o.identity, discoverySelectors: o.discoverySelectors,
    log: (level, obj, msg) => o.log?.[level](obj, msg),
  });
  const unwatch = ca.onBundleChange(() => publisher.bundleChanged());
  return {
    tlsPort: tls?.port ?? 0,
    async close() {
      unwatch();
      tls?.close();
      await publisher.close();
    },
  };
}
