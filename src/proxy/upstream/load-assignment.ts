/**
 * Parsing Envoy's `ClusterLoadAssignment` (EDS, or a cluster's inline `load_assignment`) into
 * frozen priority levels -> localities -> endpoints, with Envoy's defaults: endpoint weight 1,
 * health UNKNOWN (treated as healthy), overprovisioning factor 1.4 (`policy.overprovisioning_factor`
 * is in percent, default 140). Priorities must be contiguous from 0, as Envoy requires.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optArr, optEnum, optObj, optStr, optUint } from '../xds-json.ts';

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
export function parseLoadAssignment(json: XdsJson, at: string): LoadAssignment {
  const clusterName = optStr(json.cluster_name, child(at, 'cluster_name')) ?? '';
  const byPriority = new Map<number, LocalityGroup[]>();
  optArr(json.endpoints, child(at, 'endpoints')).forEach((raw, i) => {
    const p = child(child(at, 'endpoints'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const priority = optUint(raw.priority, child(p, 'priority'), 127) ?? 0;
    const loc = optObj(raw.locality, child(p, 'locality')) ?? {};
    const lat = child(p, 'locality');
    const weight = optUint(raw.load_balancing_weight, child(p, 'load_balancing_weight'));
    if (weight === 0) configError(child(p, 'load_balancing_weight'), 'must be at least 1');
    const endpoints = optArr(raw.lb_endpoints, child(p, 'lb_endpoints')).map((e, j) => parseLbEndpoint(e, child(child(p, 'lb_endpoints'), j)));
    const group: LocalityGroup = Object.freeze({
      locality: Object.freeze({
        region: optStr(loc.region, child(lat, 'region')) ?? '',
        zone: optStr(loc.zone, child(lat, 'zone')) ?? '',
        subZone: optStr(loc.sub_zone, child(lat, 'sub_zone')) ?? '',
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
    if (list === undefined) configError(child(at, 'endpoints'), `priorities must be contiguous from 0; priority ${p} is missing (max ${max})`);
    priorities.push(Object.freeze({ localities: Object.freeze(list) }));
  }
  const policy = optObj(json.policy, child(at, 'policy')) ?? {};
  const factor = optUint(policy.overprovisioning_factor, child(child(at, 'policy'), 'overprovisioning_factor'));
  if (factor === 0) configError(child(child(at, 'policy'), 'overprovisioning_factor'), 'must be greater than 0');
  return Object.freeze({ clusterName, priorities: Object.freeze(priorities), overprovisioningFactor: (factor ?? 140) / 100 });
}

function parseLbEndpoint(raw: unknown, at: string): EndpointSpec {
  if (!isObj(raw)) configError(at, 'expected an object');
  const ep = optObj(raw.endpoint, child(at, 'endpoint'));
  if (ep === undefined) configError(child(at, 'endpoint'), 'required (named endpoints are not supported)');
  const eat = child(at, 'endpoint');
  const addr = optObj(ep.address, child(eat, 'address'));
  if (addr === undefined) configError(child(eat, 'address'), 'required');
  const aat = child(eat, 'address');
  const sock = optObj(addr.socket_address, child(aat, 'socket_address'));
  if (sock === undefined) configError(child(aat, 'socket_address'), 'required (pipe and internal addresses are not supported)');
  const sat = child(aat, 'socket_address');
  const address = optStr(sock.address, child(sat, 'address'));
  if (address === undefined || address === '') configError(child(sat, 'address'), 'required');
  const port = optUint(sock.port_value, child(sat, 'port_value'), 65535);
  if (port === undefined) configError(child(sat, 'port_value'), 'required (named ports are not supported)');
  const protocol = optStr(sock.protocol, child(sat, 'protocol'));
  if (protocol !== undefined && protocol !== 'TCP') configError(child(sat, 'protocol'), `only TCP is supported (got ${protocol})`);
  const weight = optUint(raw.load_balancing_weight, child(at, 'load_balancing_weight')) ?? 1;
  if (weight === 0) configError(child(at, 'load_balancing_weight'), 'must be at least 1');
  const md = optObj(raw.metadata, child(at, 'metadata'));
  const fm = md === undefined ? undefined : optObj(md.filter_metadata, child(child(at, 'metadata'), 'filter_metadata'));
  const tsm = fm === undefined ? undefined : optObj(fm['envoy.transport_socket_match'], child(child(child(at, 'metadata'), 'filter_metadata'), 'envoy.transport_socket_match'));
  return Object.freeze({
    address,
    port,
    weight,
    health: optEnum(raw.health_status, child(at, 'health_status'), healthNames) ?? 'UNKNOWN',
    transportSocketMatch: Object.freeze({ ...(tsm ?? {}) }),
  });
}
