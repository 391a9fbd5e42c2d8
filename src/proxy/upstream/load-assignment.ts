/**
 * Parsing Envoy's `ClusterLoadAssignment` (EDS, or a cluster's inline `load_assignment`) into
 * frozen priority levels -> localities -> endpoints, with Envoy's defaults: endpoint weight 1,
 * health UNKNOWN (treated as healthy), overprovisioning factor 1.4 (`policy.overprovisioning_factor`
 * is in percent, default 140). Priorities must be contiguous from 0, as Envoy requires.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, invalid, isObject, optArray, optEnum, optObject, optString, optUint, type FieldPath } from './xds-read.ts';

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';
const healthNames = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'] as const;

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** One endpoint as configured. `address` may be a DNS name for STRICT/LOGICAL_DNS clusters. */
export interface EndpointSpec {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly health: HealthStatus;
  /** `metadata.filter_metadata["envoy.transport_socket_match"]`, matched against transport_socket_matches. */
  readonly transportSocketMatch: Readonly<Record<string, unknown>>;
}

export interface LocalityGroup {
  readonly locality: Locality;
  /** load_balancing_weight; undefined when unset (Envoy then gives the locality no traffic under locality-weighted LB). */
  readonly weight: number | undefined;
  readonly endpoints: readonly EndpointSpec[];
}

export interface PriorityLevel {
  readonly localities: readonly LocalityGroup[];
}

export interface LoadAssignment {
  readonly clusterName: string;
  /** Index = priority (0 highest). */
  readonly priorities: readonly PriorityLevel[];
  /** e.g. 1.4 */
  readonly overprovisioningFactor: number;
}

/** Parses a ClusterLoadAssignment; `at` names it for errors. */
export function parseLoadAssignment(json: XdsJson, at: FieldPath): LoadAssignment {
  const clusterName = optString(json, 'cluster_name', at) ?? '';
  const byPriority = new Map<number, LocalityGroup[]>();
  optArray(json, 'endpoints', at).forEach((raw, i) => {
    const p = child(child(at, 'endpoints'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const priority = optUint(raw, 'priority', p, 127) ?? 0;
    const loc = optObject(raw, 'locality', p) ?? {};
    const lat = child(p, 'locality');
    const weight = optUint(raw, 'load_balancing_weight', p);
    if (weight === 0) throw invalid(child(p, 'load_balancing_weight'), 'must be at least 1');
    const endpoints = optArray(raw, 'lb_endpoints', p).map((e, j) => parseLbEndpoint(e, child(child(p, 'lb_endpoints'), j)));
    const group: LocalityGroup = Object.freeze({
      locality: Object.freeze({
        region: optString(loc, 'region', lat) ?? '',
        zone: optString(loc, 'zone', lat) ?? '',
        subZone: optString(loc, 'sub_zone', lat) ?? '',
      }),
      weight,
      endpoints: Object.freeze(endpoints),
    });
    const list = byPriority.get(priority) ?? [];
    list.push(group);
    byPriority.set(priority, list);
  });
  const max = byPriority.size === 0 ? -1 : Math.max(...byPriority.keys());
  const priorities: PriorityLevel[] = [];
  for (let p = 0; p <= max; p++) {
    const list = byPriority.get(p);
    if (list === undefined) throw invalid(child(at, 'endpoints'), `priorities must be contiguous from 0; priority ${p} is missing (max ${max})`);
    priorities.push(Object.freeze({ localities: Object.freeze(list) }));
  }
  const policy = optObject(json, 'policy', at) ?? {};
  const factor = optUint(policy, 'overprovisioning_factor', child(at, 'policy'));
  if (factor === 0) throw invalid(child(child(at, 'policy'), 'overprovisioning_factor'), 'must be greater than 0');
  return Object.freeze({ clusterName, priorities: Object.freeze(priorities), overprovisioningFactor: (factor ?? 140) / 100 });
}

function parseLbEndpoint(raw: unknown, at: FieldPath): EndpointSpec {
  if (!isObject(raw)) throw invalid(at, 'expected an object');
  const ep = optObject(raw, 'endpoint', at);
  if (ep === undefined) throw invalid(child(at, 'endpoint'), 'required (named endpoints are not supported)');
  const eat = child(at, 'endpoint');
  const addr = optObject(ep, 'address', eat);
  if (addr === undefined) throw invalid(child(eat, 'address'), 'required');
  const aat = child(eat, 'address');
  const sock = optObject(addr, 'socket_address', aat);
  if (sock === undefined) throw invalid(child(aat, 'socket_address'), 'required (pipe and internal addresses are not supported)');
  const sat = child(aat, 'socket_address');
  const address = optString(sock, 'address', sat);
  if (address === undefined || address === '') throw invalid(child(sat, 'address'), 'required');
  const port = optUint(sock, 'port_value', sat, 65535);
  if (port === undefined) throw invalid(child(sat, 'port_value'), 'required (named ports are not supported)');
  const protocol = optString(sock, 'protocol', sat);
  if (protocol !== undefined && protocol !== 'TCP') throw invalid(child(sat, 'protocol'), `only TCP is supported (got ${protocol})`);
  const weight = optUint(raw, 'load_balancing_weight', at) ?? 1;
  if (weight === 0) throw invalid(child(at, 'load_balancing_weight'), 'must be at least 1');
  const md = optObject(raw, 'metadata', at);
  const fm = md === undefined ? undefined : optObject(md, 'filter_metadata', child(at, 'metadata'));
  const tsm = fm === undefined ? undefined : optObject(fm, 'envoy.transport_socket_match', child(child(at, 'metadata'), 'filter_metadata'));
  return Object.freeze({
    address,
    port,
    weight,
    health: optEnum(raw, 'health_status', at, healthNames) ?? 'UNKNOWN',
    transportSocketMatch: Object.freeze({ ...(tsm ?? {}) }),
  });
}
