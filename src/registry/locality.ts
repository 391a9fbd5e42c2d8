/**
 * Where an endpoint runs: Istio's locality (region/zone/subzone) from, in order of precedence,
 * an explicit WorkloadEntry `locality` ("region/zone/subzone"), the `istio-locality` label
 * ("region.zone.subzone", dots because labels cannot hold slashes), and the Kubernetes topology
 * labels (`topology.kubernetes.io/region|zone`, `topology.istio.io/subzone`), with the
 * EndpointSlice `zone` field filling a missing zone.
 */
import type { Locality } from './types.ts';

export const NoLocality: Locality = Object.freeze({ region: '', zone: '', subzone: '' });

/** Parses `region/zone/subzone` (any part may be missing). */
export function parseLocality(s: string | undefined, sep = '/'): Locality | undefined {
  if (s === undefined || s === '') return undefined;
  const [region = '', zone = '', subzone = ''] = s.split(sep);
  return Object.freeze({ region, zone, subzone });
}

/** The endpoint's locality by precedence (see module doc). */
export function localityOf(opts: {
  explicit?: string;
  labels?: Readonly<Record<string, string>>;
  zone?: string;
}): Locality {
  const fromExplicit = parseLocality(opts.explicit);
  if (fromExplicit !== undefined) return fromExplicit;
  const labels = opts.labels ?? {};
  const fromLabel = parseLocality(labels['istio-locality'], '.');
  if (fromLabel !== undefined) return fromLabel;
  const region = labels['topology.kubernetes.io/region'] ?? labels['failure-domain.beta.kubernetes.io/region'] ?? '';
  const zone = labels['topology.kubernetes.io/zone'] ?? labels['failure-domain.beta.kubernetes.io/zone'] ?? opts.zone ?? '';
  const subzone = labels['topology.istio.io/subzone'] ?? '';
  if (region === '' && zone === '' && subzone === '') return NoLocality;
  return Object.freeze({ region, zone, subzone });
}

/** `region/zone/subzone`, the form Istio's localityLbSetting uses. */
export function localityString(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}
