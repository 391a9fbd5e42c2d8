/**
 * Secret resources (SDS) for a proxy: the TLS material its listeners and clusters name, taken
 * from Kubernetes `Secret`s the way Istio's gateways resolve them:
 *   `kubernetes://<name>` (Istio Gateway / DestinationRule `credentialName`) -> Secret `<name>` in
 *     the proxy's namespace (or `kubernetes://<ns>/<name>`), keys `tls.crt` + `tls.key` (or Istio's
 *     generic `cert` + `key`);
 *   `kubernetes://<name>-cacert` -> the CA: Secret `<name>-cacert` (`ca.crt` or `cacert`), else the
 *     `ca.crt` / `cacert` key of Secret `<name>`;
 *   `kubernetes-gateway://<ns>/<name>` (Gateway API certificateRefs) -> Secret ns/name.
 * `ROOTCA` is the mesh CA's trust bundle (from the snapshot). The workload certificate `default` is
 * never here: the proxy's identity agent holds it (its key never leaves the proxy). Secrets that do
 * not exist or lack the keys are left out: the proxy then reports the secret as missing for those
 * connections, as Envoy does.
 */
import { ResourceTypes } from '../../config/resource.ts';
import { secretBody, type SecretResource } from '../../config/kinds.ts';
import type { XdsJson } from '../../xds/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';

function secretData(r: SecretResource): Record<string, string> {
  const body = secretBody(r);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(body.stringData ?? {})) out[k] = v;
  return out;
}

function lookup(snapshot: MeshSnapshot, namespace: string, name: string): Record<string, string> | undefined {
  const r = snapshot.get(ResourceTypes.Secret, namespace, name) as SecretResource | undefined;
  return r === undefined ? undefined : secretData(r);
}

function certSecret(name: string, data: Record<string, string> | undefined): XdsJson | undefined {
  const cert = data?.['tls.crt'] ?? data?.cert;
  const key = data?.['tls.key'] ?? data?.key;
  if (!cert || !key) return undefined;
  return { name, tls_certificate: { certificate_chain: { inline_string: cert }, private_key: { inline_string: key } } };
}

function caSecret(name: string, data: Record<string, string> | undefined): XdsJson | undefined {
  const ca = data?.['ca.crt'] ?? data?.cacert;
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
  if (sdsName.startsWith('kubernetes://')) {
    const ref = sdsName.slice('kubernetes://'.length);
    const [ns, name] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [proxy.namespace, ref];
    if (name.endsWith('-cacert')) {
      const base = name.slice(0, -'-cacert'.length);
      return caSecret(sdsName, lookup(snapshot, ns, name)) ?? caSecret(sdsName, lookup(snapshot, ns, base));
    }
    return certSecret(sdsName, lookup(snapshot, ns, name));
  }
  return undefined;
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
