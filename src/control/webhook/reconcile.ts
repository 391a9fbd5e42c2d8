/**
 * Keeps a revision's webhook configurations in the API server and their `caBundle` current: at
 * start and then periodically, the revision's injector and validator configurations are written
 * whole (the revision owns them), and every other
 * MutatingWebhookConfiguration labelled `istio.io/rev=<revision>` (the tags pointing at it) gets
 * the current CA bundle. Failures are logged and retried on the next round; nothing here can
 * stop the control plane.
 */
import { apiStatus } from '../../config/store/kubernetes-rest.ts';
import type { KubeObject, KubeRest } from '../../config/store/kubernetes-rest.ts';
import { describeError } from '../../errors.ts';
import { RevisionLabel, injectorConfig, injectorName, validatorConfig } from './webhook-config.ts';
import type { WebhookClient } from './webhook-config.ts';

const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const VWC = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations';

/** Server-side apply of a cluster-scoped object. */
export async function applyClusterObject(rest: KubeRest, collection: string, obj: KubeObject, fieldManager: string): Promise<KubeObject> {
  return rest.request('PATCH', `${collection}/${obj.metadata?.name}`, {
    body: obj, contentType: 'application/apply-patch+yaml', query: { fieldManager, force: true },
  });
}

/**
 * Makes a cluster-scoped object exactly `obj` (create, or replace keeping only its
 * resourceVersion): the revision owns its webhook configurations whole. Server-side apply would
 * merge with what another manager set (a chart's `service` client next to our `url` one is
 * refused as "exactly one of url or service").
 */
export async function replaceClusterObject(rest: KubeRest, collection: string, obj: KubeObject): Promise<KubeObject> {
  const path = `${collection}/${obj.metadata?.name}`;
  let current: KubeObject | undefined;
  try {
    current = await rest.request<KubeObject>('GET', path);
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
  if (current === undefined) return rest.request('POST', collection, { body: obj });
  return rest.request('PUT', path, { body: { ...obj, metadata: { ...obj.metadata, resourceVersion: current.metadata?.resourceVersion } } });
}

export interface WebhookReconcilerOptions {
  readonly rest: KubeRest;
  readonly revision: string;
  readonly client: WebhookClient;
  readonly caBundle: () => string;
  readonly validate: boolean;
  readonly validatesUnlabelled?: boolean;
  readonly periodMs?: number;
  readonly log?: (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string) => void;
}

/** Starts reconciling; resolves after the first round (so the webhook is registered before `ready`). */
export async function startWebhookReconciler(o: WebhookReconcilerOptions): Promise<{ reconcile(): Promise<void>; stop(): void }> {
  const round = async (): Promise<void> => {
    const ca = o.caBundle();
    await replaceClusterObject(o.rest, MWC, injectorConfig(o.revision, o.client, ca));
    if (o.validate) await replaceClusterObject(o.rest, VWC, validatorConfig(o.revision, o.client, ca, o.validatesUnlabelled));
    // Tags pointing at this revision carry a copy of its client config: keep their CA current.
    const tags = await o.rest.request<{ items: KubeObject[] }>('GET', MWC, { query: { labelSelector: `${RevisionLabel}=${o.revision}` } });
    const b64 = Buffer.from(ca).toString('base64');
    for (const cfg of tags.items) {
      if (cfg.metadata?.name === injectorName(o.revision)) continue;
      const hooks = (cfg.webhooks ?? []) as { clientConfig?: { caBundle?: string } }[];
      if (hooks.every((h) => h.clientConfig?.caBundle === b64)) continue;
      const patch = hooks.map((_h, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: b64 }));
      await o.rest.request('PATCH', `${MWC}/${cfg.metadata?.name}`, { body: patch, contentType: 'application/json-patch+json' });
    }
  };
  // A failure here is not fatal: the control plane serves xDS meanwhile, and the next round retries.
  await round().catch((err) => o.log?.('warn', { error: describeError(err) }, 'registering the webhook configurations failed; retrying'));
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    round().catch((err) => o.log?.('warn', { error: describeError(err) }, 'webhook configuration reconcile failed; retrying')).finally(() => (running = false));
  }, o.periodMs ?? 30_000);
  timer.unref();
  return { reconcile: round, stop: () => clearInterval(timer) };
}
