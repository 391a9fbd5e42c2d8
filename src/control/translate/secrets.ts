/**
 * Secret resources (SDS) for a proxy: the TLS material its listeners and clusters name, taken
 * from Kubernetes `Secret`s the way Istio's gateways resolve them:
 *   `kubernetes://<name>` (Istio Gateway / DestinationRule `credentialName`) -> Secret `<name>` in
 *     the proxy's namespace (or `kubernetes://<ns>/<name>`), keys `tls.crt` + `tls.key` (or Istio's
 *     generic `cert` + `key`) — the rule of src/config/credentials.ts, which the analyzer also uses;
 *   `kubernetes://<name>-cacert` -> the CA: Secret `<name>-cacert` (`ca.crt` or `cacert`), else the
 *     `ca.crt` / `cacert` key of Secret `<name>`;
 *   `kubernetes-gateway://<ns>/<name>` (Gateway API certificateRefs) -> Secret ns/name.
 * `ROOTCA` is the mesh CA's trust bundle (from the snapshot). The workload certificate `default` is
 * never here: the proxy's identity agent holds it (its key never leaves the proxy). Secrets that do
 * not exist or lack the keys are left out: the proxy then reports the secret as missing for those
 * connections, as Envoy does.
 */
import { ResourceTypes } from '../../config/resource.ts';
import { caBundle, caSecretName, certificateAndKey, credentialSecret, secretStrings } from '../../config/credentials.ts';
import type { XdsJson } from '../../xds/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';

function lookup(snapshot: MeshSnapshot, namespace: string, name: string): Record<string, string> | undefined {
  const r = snapshot.get(ResourceTypes.Secret, namespace, name);
  return r === undefined ? undefined : secretStrings(r);
}

function certSecret(name: string, data: Record<string, string> | undefined): XdsJson | undefined {
  const ck = certificateAndKey(data);
  if (ck === undefined) return undefined;
  return { name, tls_certificate: { certificate_chain: { inline_string: ck.cert }, private_key: { inline_string: ck.key } } };
}

function caSecret(name: string, data: Record<string, string> | undefined): XdsJson | undefined {
  const ca = caBundle(data);
  if (!ca) return undefined;
  return { name, validation_context: { trusted_ca: { inline_string: ca } } };
}

/** Resolves one SDS name to a Secret resource, or undefined. */
export function resolveSecret(snapshot: MeshSnapshot, proxy: ProxyNode, sdsName: string): XdsJson | undefined {
  // The mesh CA's trust bundle: public, so the control plane serves it to every proxy that names it.
  if (sdsName === 'ROOTCA') return snapshot.trustBundle.length === 0 ? undefined : { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: snapshot.trustBundle.join('') } } };
  if (sdsName.startsWith('kubernetes-gateway://')) {
    const [ns, name] = sdsName.slice('kubernetes-gateway://'.length).split('/');
    if (!ns || !name) return undefined;
    return certSecret(sdsName, lookup(snapshot, ns, name));
  }
  if (!sdsName.startsWith('kubernetes://')) return undefined;
  const ref = credentialSecret(sdsName, proxy.namespace);
  if (ref === undefined) return undefined;
  if (ref.name.endsWith('-cacert')) {
    const base = ref.name.slice(0, -'-cacert'.length);
    return caSecret(sdsName, lookup(snapshot, ref.namespace, caSecretName(base))) ?? caSecret(sdsName, lookup(snapshot, ref.namespace, base));
  }
  return certSecret(sdsName, lookup(snapshot, ref.namespace, ref.name));
}

/** The secrets a proxy receives, by name, for the SDS names its resources reference. */
export function secretsFor(snapshot: MeshSnapshot, proxy: ProxyNode, referenced: readonly string[] = []): Map<string, XdsJson> {
  const out = new Map<string, XdsJson>();
  for (const name of referenced) {
    const s = resolveSecret(snapshot, proxy, name);
    if (s !== undefined) out.set(name, s);
  }
  return out;
}
