/**
 * Who a proxy is for Istio's metrics, from its node and workload identity. Its own small module
 * because both sides of `--concurrency` need it: the primary (serving in-process) and each worker,
 * which loads no xDS client or CA client.
 */
import type { NodeJson } from '../xds/ads-wire.ts';
import type { ProxyTelemetryOptions } from './istio-telemetry.ts';

/** Istio's metrics' view of the proxy: node metadata and id, and the SPIFFE id when it has an identity. */
export function telemetryOptions(node: NodeJson, spiffeId: string | undefined): ProxyTelemetryOptions {
  return { nodeMetadata: (node.metadata ?? {}) as Record<string, unknown>, nodeId: node.id ?? '', ...(spiffeId !== undefined ? { principal: spiffeId } : {}) };
}
