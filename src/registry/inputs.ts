/**
 * The parts of Kubernetes Service/EndpointSlice/Pod and Istio ServiceEntry/WorkloadEntry specs
 * that the registry reads, typed structurally and read defensively: the loader has validated
 * resources against their schemas, but the registry must still not crash on a field it did not
 * expect (a missing list is an empty list).
 */
import type { Resource } from '../config/resource.ts';

export interface K8sServicePortSpec {
  name?: string;
  port?: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}
export interface K8sServiceSpec {
  ports?: K8sServicePortSpec[];
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: string[];
  type?: string;
  externalName?: string;
}
export interface EndpointSliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  zone?: string;
  nodeName?: string;
  hostname?: string;
  targetRef?: { kind?: string; name?: string; namespace?: string };
}
export interface EndpointSliceBody {
  addressType?: string;
  endpoints?: EndpointSliceEndpoint[];
  ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
}
export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}
export interface ServiceEntryPortSpec {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}
export interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: ServiceEntryPortSpec[];
  location?: string;
  resolution?: string;
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

/** A resource's spec as a plain object (never undefined). */
export function specOf<T>(r: Resource): T {
  const s = r.spec;
  return (s !== null && typeof s === 'object' ? s : {}) as T;
}

/** Top-level fields of spec-less kinds (EndpointSlice): `body`, falling back to `spec`. */
export function bodyOf<T>(r: Resource): T {
  const b = r.body ?? r.spec;
  return (b !== null && typeof b === 'object' ? b : {}) as T;
}

/** A list field, or empty. */
export function list<T>(v: T[] | undefined): readonly T[] {
  return Array.isArray(v) ? v : [];
}

/** True when every label in `selector` is present in `labels` with the same value (empty selector matches all). */
export function selectorMatches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}
