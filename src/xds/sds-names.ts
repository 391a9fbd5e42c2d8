/**
 * The SDS secret names a set of Listeners and Clusters refers to (`tls_certificate_sds_secret_configs`
 * and `validation_context_sds_secret_config` anywhere in their transport sockets). The control
 * plane uses it to know which Secrets a proxy needs; the proxy to know what to subscribe to.
 */
import type { XdsJson } from './types.ts';

function walk(v: unknown, out: Set<string>): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(x, out);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const o = v as Record<string, unknown>;
  const certs = o.tls_certificate_sds_secret_configs;
  if (Array.isArray(certs)) for (const c of certs) if (c && typeof (c as { name?: unknown }).name === 'string') out.add((c as { name: string }).name);
  const vsds = o.validation_context_sds_secret_config as { name?: unknown } | undefined;
  if (vsds && typeof vsds.name === 'string') out.add(vsds.name);
  for (const [k, x] of Object.entries(o)) if (k !== 'tls_certificate_sds_secret_configs') walk(x, out);
}

/** SDS names referenced anywhere in `resources`, sorted. */
export function sdsNamesOf(resources: Iterable<XdsJson>): string[] {
  const out = new Set<string>();
  for (const r of resources) walk(r, out);
  return [...out].sort();
}
