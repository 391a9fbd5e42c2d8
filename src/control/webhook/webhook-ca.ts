/**
 * The webhook's trust: one CA per control plane namespace, kept in a Secret
 * (`trellis-webhook-ca`) so every replica and every revision presents certificates the same
 * `caBundle` verifies; each replica issues its own serving certificate from it and renews it well
 * before expiry. The first replica to start creates the Secret; a replica that loses that race
 * (409) reads the winner's.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createCa, issueCert } from './certs.ts';
import type { IssuedCert } from './certs.ts';
import { KubeApiError, apiStatus } from '../../config/store/kubernetes-rest.ts';
import type { KubeRest } from '../../config/store/kubernetes-rest.ts';

export const WebhookCaSecret = 'trellis-webhook-ca';

interface SecretJson {
  data?: Record<string, string>;
}

function fromSecret(s: SecretJson): Pick<IssuedCert, 'cert' | 'key' | 'certPem'> {
  const certPem = Buffer.from(s.data?.['ca.crt'] ?? '', 'base64').toString();
  const keyPem = Buffer.from(s.data?.['ca.key'] ?? '', 'base64').toString();
  return { certPem, cert: new X509Certificate(certPem), key: createPrivateKey(keyPem) };
}

/** Reads the CA Secret in `namespace`, creating it first if absent. */
export async function loadOrCreateWebhookCa(rest: KubeRest, namespace: string): Promise<Pick<IssuedCert, 'cert' | 'key' | 'certPem'>> {
  const path = `/api/v1/namespaces/${namespace}/secrets/${WebhookCaSecret}`;
  try {
    return fromSecret(await rest.request<SecretJson>('GET', path));
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
  const ca = await createCa(`trellis-webhook-ca.${namespace}`);
  try {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
        metadata: { name: WebhookCaSecret, namespace, labels: { 'app.kubernetes.io/part-of': 'trellis' } },
        data: { 'ca.crt': Buffer.from(ca.certPem).toString('base64'), 'ca.key': Buffer.from(ca.keyPem).toString('base64') },
      },
    });
    return ca;
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 409) return fromSecret(await rest.request<SecretJson>('GET', path));
    throw err;
  }
}

/** A serving certificate for the webhook's names (Service DNS names and/or the URL's host). */
export function issueServingCert(ca: Pick<IssuedCert, 'cert' | 'key'>, hosts: readonly string[], days = 90): Promise<IssuedCert> {
  return issueCert(ca, { commonName: hosts[0] ?? 'trellis-webhook', hosts, days });
}

/** The names a webhook Service answers to: `name`, `name.ns`, `name.ns.svc`, `name.ns.svc.<suffix>`. */
export function serviceHosts(name: string, namespace: string, domainSuffix = 'cluster.local'): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.${domainSuffix}`];
}
