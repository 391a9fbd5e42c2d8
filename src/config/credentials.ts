/**
 * Where a TLS `credentialName` (Istio Gateway server, DestinationRule) finds its Secret — the one
 * rule the control plane's SDS (src/control/translate/secrets.ts) and the analyzer share, so that
 * what analysis accepts is what proxies get. As Istio: the Secret lives in the namespace of the
 * proxy that uses it (for a Gateway, the gateway workload's namespace, not the Gateway
 * resource's), `kubernetes://` may prefix the name, and `kubernetes://<ns>/<name>` names another
 * namespace. A server certificate is the `tls.crt` + `tls.key` keys (or Istio's generic `cert` +
 * `key`); its CA is `ca.crt` / `cacert`, in Secret `<name>-cacert` or else in `<name>` itself.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Resource } from './resource.ts';

/** The Secret a credential names. */
export interface CredentialSecretRef {
  readonly namespace: string;
  readonly name: string;
}

const KubernetesScheme = 'kubernetes://';

/**
 * The Secret `credential` (a credentialName, or an SDS name `kubernetes://...`) names for a
 * proxy in `proxyNamespace`; undefined for other SDS providers (`file://`, `default`'s mesh
 * identity...), which are not Kubernetes Secrets.
 */
export function credentialSecret(credential: string, proxyNamespace: string): CredentialSecretRef | undefined {
  let ref = credential;
  if (ref.startsWith(KubernetesScheme)) ref = ref.slice(KubernetesScheme.length);
  else if (ref.includes('://')) return undefined;
  if (ref === '') return undefined;
  const slash = ref.indexOf('/');
  if (slash >= 0) {
    const namespace = ref.slice(0, slash);
    const name = ref.slice(slash + 1);
    return namespace === '' || name === '' ? undefined : { namespace, name };
  }
  return { namespace: proxyNamespace, name: ref };
}

/** A Secret's data with `data` (base64) decoded and `stringData` applied on top, as the API server stores it. */
export function secretStrings(secret: Resource): Record<string, string> {
  const body = (secret.body ?? {}) as { data?: Record<string, unknown>; stringData?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.data ?? {})) if (typeof v === 'string') out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(body.stringData ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The certificate chain and key a Secret carries for serving TLS, or undefined when it lacks either. */
export function certificateAndKey(data: Readonly<Record<string, string>> | undefined): { readonly cert: string; readonly key: string } | undefined {
  const cert = data?.['tls.crt'] ?? data?.cert;
  const key = data?.['tls.key'] ?? data?.key;
  return cert && key ? { cert, key } : undefined;
}

/** The CA bundle a Secret carries, or undefined. */
export function caBundle(data: Readonly<Record<string, string>> | undefined): string | undefined {
  return data?.['ca.crt'] || data?.cacert || undefined;
}

/** The name of the Secret that holds a credential's CA when it is kept apart (`<name>-cacert`). */
export function caSecretName(name: string): string {
  return `${name}-cacert`;
}

/**
 * Why a certificate and key cannot be served (not PEM, not a certificate, a key that does not
 * parse or does not belong to the certificate), or undefined when they can. Expiry is not judged:
 * it depends on the clock, and analysis is a function of the configuration alone.
 */
export function certificateProblem(ck: { readonly cert: string; readonly key: string }): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(ck.cert);
  } catch (err) {
    return `its certificate is not a PEM X.509 certificate (${(err as Error).message})`;
  }
  let key;
  try {
    key = createPrivateKey(ck.key);
  } catch (err) {
    return `its private key is not a PEM private key (${(err as Error).message})`;
  }
  if (!cert.checkPrivateKey(key)) return 'its private key does not belong to its certificate';
  return undefined;
}
