/**
 * The control plane on Kubernetes: the same control plane (store -> snapshot -> translate -> xDS)
 * with a KubernetesStore as its store, plus what only a cluster has — the admission webhook
 * server (sidecar injection and validation, HTTPS on 15017), this revision's webhook
 * configurations with a CA bundle kept current, status written back by the elected leader, and
 * the mesh CA the Kubernetes way (kube-ca.ts: root in a Secret, service-account tokens checked by
 * TokenReview, TLS port 15012, `istio-ca-root-cert` in every namespace). One seam for `trellis
 * control --kubeconfig`: the control plane itself does not know it runs on Kubernetes.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../control-plane.ts';
import type { ControlPlane, ControlPlaneOptions } from '../control-plane.ts';
import { KubernetesStore } from '../../config/store/kubernetes.ts';
import { KubeRest, loadKubeConfig } from '../../config/store/kubernetes-rest.ts';
import type { LabelSelector } from '../../config/label-selector.ts';
import type { Resource } from '../../config/resource.ts';
import { describeError } from '../../errors.ts';
import { startWebhookServer } from '../webhook/admission.ts';
import type { AdmissionRequest, AdmissionVerdict, WebhookServer } from '../webhook/admission.ts';
import { injectPod } from '../webhook/inject.ts';
import type { InjectionSettings } from '../webhook/inject.ts';
import { validationHandler } from '../webhook/validate.ts';
import { issueServingCert, loadOrCreateWebhookCa, serviceHosts } from '../webhook/webhook-ca.ts';
import { startWebhookReconciler } from '../webhook/reconcile.ts';
import type { WebhookClient } from '../webhook/webhook-config.ts';
import { startStatusWriter } from './status-writer.ts';
import { kubernetesCaOptions, startKubernetesCaServices, type KubernetesCaOptions } from './kube-ca.ts';

/** What `trellis control` adds when it runs against a Kubernetes API server. */
export interface KubernetesControlOptions {
  /** A kubeconfig file; undefined = in-cluster service account (or $KUBECONFIG / ~/.kube/config). */
  readonly kubeconfig?: string;
  /** Or a ready KubeConfig (tests, embedding). */
  readonly kubeConfig?: KubeConfig;
  /** The control plane revision (`default` when unrevisioned). */
  readonly revision: string;
  /** Namespace of the control plane: the webhook CA Secret and the leader Lease live here. */
  readonly systemNamespace: string;
  readonly discoverySelectors?: readonly LabelSelector[];
  /** The admission webhook; undefined = none. */
  readonly webhook?: {
    readonly port: number;
    readonly host?: string;
    /** How the API server reaches it. */
    readonly client: WebhookClient;
    readonly validate: boolean;
    readonly validatesUnlabelled?: boolean;
  };
  readonly injection: Omit<InjectionSettings, 'revision' | 'nativeSidecars'> & { readonly nativeSidecars: boolean | 'auto' };
  /** Write Gateway API status and (with `analysis`) Istio validationMessages when leader. */
  readonly status?: { readonly enabled: boolean; readonly analysis: boolean; readonly identity: string };
  /** The mesh CA (with the control plane's `ca` options, which it completes); undefined = no CA. */
  readonly ca?: KubernetesCaOptions;
}

export interface KubernetesControlPlane {
  readonly cp: ControlPlane;
  readonly store: KubernetesStore;
  /** The webhook's port (0 when none). */
  readonly webhookPort: number;
  /** The CA bundle that verifies the webhook (PEM). */
  readonly caBundle: string;
  /** The mesh CA's TLS port (0 when none). */
  readonly caTlsPort: number;
  close(): Promise<void>;
}

/** Whether the API server runs native sidecars (restartPolicy: Always init containers): Kubernetes >= 1.29. */
export async function supportsNativeSidecars(rest: KubeRest): Promise<boolean> {
  const v = await rest.request<{ major?: string; minor?: string }>('GET', '/version');
  const major = Number.parseInt(v.major ?? '0', 10);
  const minor = Number.parseInt(v.minor ?? '0', 10);
  return major > 1 || (major === 1 && minor >= 29);
}

function webhookHosts(client: WebhookClient): string[] {
  if ('url' in client) return [new URL(client.url).hostname.replace(/^\[|\]$/g, '')];
  return serviceHosts(client.service.name, client.service.namespace);
}

/** Starts the control plane on a KubernetesStore with the webhook and the status writer. */
export async function startKubernetesControl(k: KubernetesControlOptions, cpOpts: Omit<ControlPlaneOptions, 'store' | 'configPaths'>): Promise<KubernetesControlPlane> {
  const log = cpOpts.log;
  const kc = k.kubeConfig ?? loadKubeConfig(k.kubeconfig);
  const rest = new KubeRest(kc);
  const store = new KubernetesStore(rest, {
    discoverySelectors: k.discoverySelectors,
    onError: (err, kind) => log?.warn({ kind: kind.type, error: describeError(err) }, 'Kubernetes list/watch failed; retrying (last-known-good config stays in force)'),
  });
  const closers: Array<() => unknown> = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    await store.ready();
    const withCa = k.ca !== undefined && cpOpts.ca !== undefined;
    const kca = withCa ? kubernetesCaOptions(rest, k.ca!, cpOpts.ca!, k.systemNamespace, log) : undefined;
    const caOpts = kca?.ca ?? cpOpts.ca;
    const cp = await startControlPlane({ ...cpOpts, ...(caOpts !== undefined ? { ca: caOpts } : {}), configPaths: [], store });
    closers.push(() => cp.close());
    const identity = k.status?.identity ?? `${k.revision}-${process.pid}`;
    const caServices = withCa
      ? await startKubernetesCaServices({ cp, rest, k: k.ca!, mark: kca!.mark, host: cpOpts.host ?? '127.0.0.1', systemNamespace: k.systemNamespace, identity, discoverySelectors: k.discoverySelectors, log })
      : undefined;
    if (caServices !== undefined) closers.push(() => caServices.close());
    let webhook: WebhookServer | undefined;
    let caBundle = '';
    if (k.webhook !== undefined) {
      const ca = await loadOrCreateWebhookCa(rest, k.systemNamespace);
      caBundle = ca.certPem;
      let serving = await issueServingCert(ca, webhookHosts(k.webhook.client));
      const native = k.injection.nativeSidecars === 'auto' ? await supportsNativeSidecars(rest) : k.injection.nativeSidecars;
      const settings: InjectionSettings = {
        ...k.injection, revision: k.revision, nativeSidecars: native,
        ...(withCa && cp.ca !== undefined ? { ca: { address: k.ca!.injectionAddress, trustDomain: cpOpts.mesh?.trustDomain ?? 'cluster.local', tokenAudience: k.ca!.tokenAudiences[0] } } : {}),
      };
      const all = (): Resource[] => store.types().flatMap((t) => [...store.list(t)]);
      const inject = (req: AdmissionRequest): AdmissionVerdict => {
        if (req.kind.kind !== 'Pod' || req.operation !== 'CREATE' || req.object === undefined) return { allowed: true };
        const pod = { ...req.object, metadata: { namespace: req.namespace, ...(req.object.metadata as object) } };
        const out = injectPod(pod, settings);
        if ('skipped' in out) {
          log?.info({ namespace: req.namespace, pod: (pod.metadata as { name?: string; generateName?: string }).name ?? (pod.metadata as { generateName?: string }).generateName, reason: out.skipped }, 'injection skipped');
          return { allowed: true };
        }
        return { allowed: true, patch: out.patch };
      };
      webhook = await startWebhookServer({
        host: k.webhook.host,
        port: k.webhook.port,
        certPem: serving.certPem,
        keyPem: serving.keyPem,
        handlers: { '/inject': inject, '/validate': validationHandler(all, cpOpts.mesh?.domainSuffix) },
        log: (level, obj, msg) => log?.[level](obj, msg),
      });
      closers.push(() => webhook?.close());
      // Renew the serving certificate daily (it is valid for 90 days).
      const renew = setInterval(() => {
        void issueServingCert(ca, webhookHosts(k.webhook!.client)).then((next) => {
          serving = next;
          webhook?.setCertificate(serving.certPem, serving.keyPem);
        }, (err: unknown) => log?.warn({ error: describeError(err) }, 'renewing the webhook certificate failed; the current one stays'));
      }, 86_400_000);
      renew.unref();
      closers.push(() => clearInterval(renew));
      const client: WebhookClient = 'url' in k.webhook.client && k.webhook.port === 0
        ? { url: k.webhook.client.url.replace(/:0(\/|$)/, `:${webhook.port}$1`) }
        : k.webhook.client;
      const reconciler = await startWebhookReconciler({
        rest, revision: k.revision, client, caBundle: () => ca.certPem, validate: k.webhook.validate,
        validatesUnlabelled: k.webhook.validatesUnlabelled, log: (level, obj, msg) => log?.[level](obj, msg),
      });
      closers.push(() => reconciler.stop());
    }
    if (k.status?.enabled) {
      const writer = await startStatusWriter({ rest, store, cp, namespace: k.systemNamespace, identity: k.status.identity, analysis: k.status.analysis, log });
      closers.push(() => writer.close());
    }
    log?.info({ revision: k.revision, webhookPort: webhook?.port ?? 0, caTlsPort: caServices?.tlsPort ?? 0, server: rest.server }, 'control plane reading from the Kubernetes API');
    return { cp, store, webhookPort: webhook?.port ?? 0, caBundle, caTlsPort: caServices?.tlsPort ?? 0, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
