/**
 * Secret resources (SDS) for a proxy. Placeholder: the certificate authority comes later, so no
 * secrets are generated yet; listeners and clusters already reference SDS names (`default`,
 * `ROOTCA`, `kubernetes://<credentialName>`), which the consistency check does not require.
 */
import type { XdsJson } from '../../xds/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';

/** The secrets a proxy receives, by name (currently none). */
export function secretsFor(_snapshot: MeshSnapshot, _proxy: ProxyNode): Map<string, XdsJson> {
  return new Map();
}
