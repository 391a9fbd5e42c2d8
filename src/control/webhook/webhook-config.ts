/**
 * The admission webhook configurations of a revision and of a tag, built as Istio builds them:
 * a revision `R` injects pods in namespaces labelled `istio.io/rev=R` (or pods labelled so in
 * unlabelled namespaces); the `default` revision injects `istio-injection=enabled` namespaces
 * (and pods labelled `sidecar.istio.io/inject=true`); a pod labelled
 * `sidecar.istio.io/inject=false` is never sent. A tag `T` is one more MutatingWebhookConfiguration
 * selecting `istio.io/rev=T` whose client config is copied from the revision it points at, so
 * moving a tag moves every namespace labelled with it, without relabelling. The same objects
 * are what `trellis manifest` prints and what the Helm chart renders.
 */
import type { KubeObject } from '../../config/store/kubernetes-rest.ts';

/** How the API server reaches the webhook: a URL (outside the cluster) or a Service. */
export type WebhookClient =
  | { readonly url: string }
  | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } };

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };

export const RevisionLabel = 'istio.io/rev';
export const TagLabel = 'istio.io/tag';
export const InjectionLabel = 'istio-injection';
export const InjectLabel = 'sidecar.istio.io/inject';

/** `trellis-sidecar-injector` for the default revision, `trellis-sidecar-injector-<rev>` otherwise. */
export function injectorName(revision: string): string {
  return revision === 'default' || revision === '' ? 'trellis-sidecar-injector' : `trellis-sidecar-injector-${revision}`;
}

/** `trellis-revision-tag-<tag>`. */
export function tagWebhookName(tag: string): string {
  return `trellis-revision-tag-${tag}`;
}

/** `trellis-validator` / `trellis-validator-<rev>`. */
export function validatorName(revision: string): string {
  return revision === 'default' || revision === '' ? 'trellis-validator' : `trellis-validator-${revision}`;
}

function clientConfig(client: WebhookClient, path: string, caBundle: string | undefined): Record<string, unknown> {
  const ca = caBundle !== undefined ? { caBundle: Buffer.from(caBundle).toString('base64') } : {};
  if ('url' in client) return { url: `${client.url.replace(/\/+$/, '')}${path}`, ...ca };
  return { service: { namespace: client.service.namespace, name: client.service.name, port: client.service.port ?? 443, path }, ...ca };
}

function podWebhook(name: string, client: Record<string, unknown>, namespaceSelector: Selector, objectSelector: Selector): Record<string, unknown> {
  return {
    name,
    clientConfig: client,
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    // A pod in an injected namespace must never start without its proxy: refuse it instead.
    failurePolicy: 'Fail',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    reinvocationPolicy: 'Never',
    timeoutSeconds: 10,
    matchPolicy: 'Equivalent',
    namespaceSelector,
    objectSelector,
  };
}

/** The webhooks selecting pods for `value` (a revision or a tag name). */
function injectionWebhooks(value: string, client: Record<string, unknown>, prefix: string): Record<string, unknown>[] {
  const notFalse = { key: InjectLabel, operator: 'NotIn', values: ['false'] };
  if (value === 'default') {
    return [
      podWebhook(`${prefix}namespace.sidecar-injector.trellis.dev`, client,
        { matchExpressions: [{ key: InjectionLabel, operator: 'In', values: ['enabled'] }] },
        { matchExpressions: [notFalse] }),
      podWebhook(`${prefix}object.sidecar-injector.trellis.dev`, client,
        { matchExpressions: [{ key: InjectionLabel, operator: 'DoesNotExist' }, { key: RevisionLabel, operator: 'DoesNotExist' }] },
        { matchExpressions: [{ key: InjectLabel, operator: 'In', values: ['true'] }, { key: RevisionLabel, operator: 'DoesNotExist' }] }),
    ];
  }
  return [
    podWebhook(`${prefix}namespace.sidecar-injector.trellis.dev`, client,
      { matchExpressions: [{ key: RevisionLabel, operator: 'In', values: [value] }, { key: InjectionLabel, operator: 'DoesNotExist' }] },
      { matchExpressions: [notFalse] }),
    podWebhook(`${prefix}object.sidecar-injector.trellis.dev`, client,
      { matchExpressions: [{ key: InjectionLabel, operator: 'DoesNotExist' }, { key: RevisionLabel, operator: 'DoesNotExist' }] },
      { matchExpressions: [notFalse, { key: RevisionLabel, operator: 'In', values: [value] }] }),
  ];
}

function labels(revision: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [RevisionLabel]: revision, 'app.kubernetes.io/part-of': 'trellis', 'app.kubernetes.io/managed-by': 'trellis', ...extra };
}

/** The revision's MutatingWebhookConfiguration. */
export function injectorConfig(revision: string, client: WebhookClient, caBundle?: string): KubeObject {
  const rev = revision === '' ? 'default' : revision;
  const prefix = rev === 'default' ? '' : `rev.`;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: injectorName(rev), labels: labels(rev, { app: 'sidecar-injector' }) },
    webhooks: injectionWebhooks(rev, clientConfig(client, '/inject', caBundle), prefix),
  };
}

/**
 * A tag's MutatingWebhookConfiguration: pods of namespaces labelled `istio.io/rev=<tag>` go to
 * the webhook of `revision` (its client config and CA bundle, copied).
 */
export function tagConfig(tag: string, revision: string, revisionClientConfig: Record<string, unknown>): KubeObject {
  const path = (revisionClientConfig.service as { path?: string } | undefined)?.path;
  const client = { ...revisionClientConfig, ...(path !== undefined ? { service: { ...(revisionClientConfig.service as object), path: '/inject' } } : {}) };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: tagWebhookName(tag), labels: labels(revision, { [TagLabel]: tag, app: 'sidecar-injector' }) },
    webhooks: injectionWebhooks(tag, client, tag === 'default' ? '' : 'rev.'),
  };
}

/**
 * The revision's ValidatingWebhookConfiguration for the Istio and Gateway API groups: objects
 * labelled with the revision, and, for the revision that validates unlabelled objects (the
 * default one, or the one named by `--validate-unlabelled`), those without the label.
 */
export function validatorConfig(revision: string, client: WebhookClient, caBundle?: string, validatesUnlabelled = revision === 'default' || revision === ''): KubeObject {
  const rev = revision === '' ? 'default' : revision;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: validatorName(rev), labels: labels(rev, { app: 'validator' }) },
    webhooks: [{
      name: `${rev === 'default' ? '' : 'rev.'}validation.trellis.dev`,
      clientConfig: clientConfig(client, '/validate', caBundle),
      rules: [{
        operations: ['CREATE', 'UPDATE'],
        apiGroups: ['networking.istio.io', 'security.istio.io', 'telemetry.istio.io', 'gateway.networking.k8s.io'],
        apiVersions: ['*'],
        resources: ['*'],
        scope: '*',
      }],
      failurePolicy: 'Fail',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      timeoutSeconds: 10,
      matchPolicy: 'Equivalent',
      // Objects of other revisions are theirs to validate.
      objectSelector: validatesUnlabelled
        ? { matchExpressions: [{ key: RevisionLabel, operator: 'DoesNotExist' }] }
        : { matchLabels: { [RevisionLabel]: rev } },
    }],
  };
}
