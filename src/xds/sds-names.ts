/**
 * The SDS secret names a set of Listeners and Clusters refers to (`tls_certificate_sds_secret_configs`
 * and `validation_context_sds_secret_config` anywhere in their transport sockets) that are served
 * over ADS. The control plane uses it to know which Secrets a proxy needs; the proxy to know what to
 * subscribe to. References to another SDS server (`api_config_source`, e.g. Istio's `sds-grpc` for
 * the workload certificate, held by the local identity agent) are not the control plane's to serve.
 */
import type { XdsJson } from './types.ts';

function viaAds(ref: { sds_config?: unknown }): boolean {
  const cfg = ref.sds_config as { api_config_source?: unknown } | undefined;
  return cfg === undefined || cfg === null || cfg.api_config_source === undefined;
}

function walk(v: unknown, out: Set<string>): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(x, out);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const o = v as Record<string, unknown>;
  const certs = o.tls_certificate_sds_secret_configs;
  if (Array.isArray(certs)) for (const c of certs) if (c && typeof (c as { name?: unknown }).name === 'string' && viaAds(c as object)) out.add((c as { name: string }).name);
  const vsds = o.validation_context_sds_secret_config as { name?: unknown; sds_config?: unknown } | undefined;
  if (vsds && typeof vsds.name === 'string' && viaAds(vsds)) out.add(vsds.name);
  for (const [k, x] of Object.entries(o)) if (k !== 'tls_certificate_sds_secret_configs') walk(x, out);
}

/** SDS names referenced anywhere in `resources`, sorted. */
export function sdsNamesOf(resources: Iterable<XdsJson>): string[] {
  const out = new Set<string>();
  for (const r of resources) walk(r, out);
  return [...out].sort();
}
