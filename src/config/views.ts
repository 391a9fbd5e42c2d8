/**
 * The spec fields Trellis reads, named once for every reader: the analyzers, the snapshot's
 * indexes and translation. `kinds.ts` types resources as the loader produces them, from the
 * upstream models, whose `oneof` fields are unions of variants; reading "whichever of
 * prefix/exact/regex is set" through those is awkward, so readers see specs through these
 * structural views instead: every field the schema leaves optional is optional, arrays are
 * readonly, and the upstream-typed specs are assignable to them. The views live in views/, one
 * file per API family (kubernetes, istio, gateway-api); readers import them from here, with the
 * defensive readers below. A field Trellis starts to read is added there, once.
 */
import type { Resource } from './resource.ts';
import type { Labels } from './views/kubernetes.ts';

export type * from './views/kubernetes.ts';
export type * from './views/istio.ts';
export type * from './views/gateway-api.ts';

// ---- reading ----

/** The spec of `r` as the view `T` (a missing spec reads as `{}`). */
export function view<T>(r: Resource): T {
  const s = r.spec;
  return (s !== null && typeof s === 'object' ? s : {}) as T;
}

/** The top-level fields of a spec-less kind (EndpointSlice) as the view `T`: `body`, else `spec`. */
export function bodyView<T>(r: Resource): T {
  const b = r.body ?? r.spec;
  return (b !== null && typeof b === 'object' ? b : {}) as T;
}

/** Arrays read defensively: anything that is not an array is empty. */
export function list<T>(v: readonly T[] | undefined): readonly T[] {
  return Array.isArray(v) ? v : [];
}

/** Label maps read defensively. */
export function labelsOf(v: unknown): Labels {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Labels) : {};
}

/** True for a non-null, non-array object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
