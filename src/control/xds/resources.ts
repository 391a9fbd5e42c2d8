/**
 * Turns one proxy's generated XdsResourceSet into what the ADS streams send: every resource
 * encoded once into an Any (cached by object identity, since translated resources are immutable),
 * a content hash per resource (the delta per-resource version) and per type (the SotW version).
 * A resource that does not encode is a translation bug: it is left out and reported, never sent
 * half-formed. Each set is also checked for consistency once (src/xds/consistency.ts).
 */
import { createHash } from 'node:crypto';
import { describeError } from '../../errors.ts';
import { toAny, type AnyBytes } from '../../xds/codec.ts';
import { consistencyProblems } from '../../xds/consistency.ts';
import { TypeUrl, type XdsJson, type XdsResourceSet } from '../../xds/types.ts';

/** One encoded resource. */
export interface EncodedResource {
  readonly name: string;
  readonly json: XdsJson;
  readonly any: AnyBytes;
  /** Content hash; the per-resource version in delta xDS. */
  readonly hash: string;
}

/** Everything of one type a proxy could be sent, by name. */
export interface EncodedType {
  readonly typeUrl: string;
  readonly resources: ReadonlyMap<string, EncodedResource>;
}

/** A proxy's whole encoded set, plus resources that failed to encode. */
export interface EncodedSet {
  readonly types: ReadonlyMap<string, EncodedType>;
  readonly errors: readonly string[];
}

const cache = new WeakMap<object, EncodedResource>();

// By type and name, the last encoding with its JSON text: translation builds new objects on
// every change, but most resources come out identical, and comparing JSON text is several times
// cheaper than encoding (at 10,000 services re-encoding 30,000 resources cost ~0.7 s a change).
const byContent = new Map<string, { text: string; any: AnyBytes; hash: string }>();
const ContentCacheLimit = 500_000;

function encodeOne(typeUrl: string, name: string, json: XdsJson): EncodedResource {
  const hit = cache.get(json);
  if (hit !== undefined && hit.name === name) return hit;
  const key = `${typeUrl}\u0000${name}`;
  const text = JSON.stringify(json);
  const prev = byContent.get(key);
  let enc: EncodedResource;
  if (prev !== undefined && prev.text === text) {
    enc = { name, json, any: prev.any, hash: prev.hash };
  } else {
    const any = toAny(json['@type'] === undefined ? { '@type': typeUrl, ...json } : json);
    const hash = createHash('sha256').update(any.value).digest('hex').slice(0, 16);
    enc = { name, json, any, hash };
    if (byContent.size >= ContentCacheLimit) byContent.clear(); // bounded; refills on the next push
    byContent.set(key, { text, any, hash });
  }
  cache.set(json, enc);
  return enc;
}

/** Encodes a resource set; resources that fail are listed in `errors` and left out. */
export function encodeSet(set: XdsResourceSet): EncodedSet {
  const types = new Map<string, EncodedType>();
  const errors: string[] = [];
  for (const [typeUrl, byName] of set) {
    const resources = new Map<string, EncodedResource>();
    for (const [name, json] of byName) {
      try {
        resources.set(name, encodeOne(typeUrl, name, json));
      } catch (err) {
        errors.push(`${shortTypeName(typeUrl)} ${name}: ${describeError(err)}`);
      }
    }
    types.set(typeUrl, { typeUrl, resources });
  }
  return { types, errors };
}

const checkedSets = new WeakMap<XdsResourceSet, { readonly encoded: EncodedSet; readonly inconsistent: readonly string[] }>();

/**
 * `encodeSet` and `consistencyProblems` of one set, computed once per set object: the control
 * plane hands the same set to every proxy that shares a translation, so a push to 1,000 alike
 * proxies walks and encodes it once (the benchmark's top frame before this).
 */
export function encodeAndCheck(set: XdsResourceSet): { readonly encoded: EncodedSet; readonly inconsistent: readonly string[] } {
  let hit = checkedSets.get(set);
  if (hit === undefined) {
    hit = { encoded: encodeSet(set), inconsistent: consistencyProblems(set) };
    checkedSets.set(set, hit);
  }
  return hit;
}

const typeVersions = new WeakMap<ReadonlyMap<string, EncodedResource>, string>();

/** `versionOf` every resource of one encoded type map, memoized per map (wildcard subscribers share it). */
export function versionOfAll(resources: ReadonlyMap<string, EncodedResource>): string {
  let v = typeVersions.get(resources);
  if (v === undefined) {
    v = versionOf(resources.values());
    typeVersions.set(resources, v);
  }
  return v;
}

/** Version of a group of resources: hash over their names and content hashes (order-free). */
export function versionOf(resources: Iterable<EncodedResource>): string {
  const parts = [...resources].map((r) => `${r.name}\u0000${r.hash}`).sort();
  if (parts.length === 0) return 'empty';
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 12);
}

const shortNames: Record<string, string> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
  [TypeUrl.Secret]: 'SDS',
};

/** CDS / LDS / EDS / RDS / SDS for the known type URLs, else the message name. */
export function shortTypeName(typeUrl: string): string {
  return shortNames[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Order in which changed types are pushed: Envoy's "make before break" for ADS, unknown types last. */
export function pushOrder(typeUrls: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = ([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret] as string[]).indexOf(t);
    return i < 0 ? 100 : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
