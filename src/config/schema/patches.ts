/**
 * Fields the upstream model packages' schemas lag behind on. The packages pin Istio 1.18 and
 * an early Gateway API v1, while users (and the Gateway API conformance manifests) write fields
 * added since: HTTPRoute rule names, retries, CORS, percentage mirroring, 303/307/308 redirects;
 * Istio `mirrors`, regex rewrites, policy `targetRefs`. Each patch follows the current upstream
 * API reference, so valid newer config is accepted and still checked.
 */
import type { SchemaNode } from './types.ts';
import { schemaAt } from './checks.ts';

const str: SchemaNode = { type: 'string' };
const bool: SchemaNode = { type: 'boolean' };
const open: SchemaNode = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const strList: SchemaNode = { type: 'array', items: str };
const gwDuration: SchemaNode = { type: 'string', pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' };
const sectionName: SchemaNode = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' };
const policyTargetRef: SchemaNode = {
  type: 'object',
  required: ['kind', 'name'],
  properties: { group: str, kind: str, name: str, namespace: str },
};

/** Gateway API HTTPRoute rule `retry` (GEP-1731). */
const HTTP_ROUTE_RETRY: SchemaNode = {
  type: 'object',
  properties: {
    codes: { type: 'array', items: { type: 'integer', minimum: 400, maximum: 599 } },
    attempts: { type: 'integer', minimum: 0 },
    backoff: gwDuration,
  },
};

/** Gateway API `sessionPersistence` (GEP-1619). */
const SESSION_PERSISTENCE: SchemaNode = {
  type: 'object',
  properties: {
    sessionName: { type: 'string', maxLength: 128 },
    absoluteTimeout: gwDuration,
    idleTimeout: gwDuration,
    type: { type: 'string', enum: ['Cookie', 'Header'], default: 'Cookie' },
    cookieConfig: { type: 'object', properties: { lifetimeType: { type: 'string', enum: ['Permanent', 'Session'] } } },
  },
};

/** Gateway API HTTPRoute `CORS` filter (GEP-1767). */
const CORS_FILTER: SchemaNode = {
  type: 'object',
  properties: {
    allowOrigins: strList,
    allowCredentials: bool,
    allowMethods: strList,
    allowHeaders: strList,
    exposeHeaders: strList,
    maxAge: { type: 'integer', minimum: 1, default: 5 },
  },
};

/** Percentage mirroring (GEP-3171): `percent` or `fraction`. */
function patchMirror(filter: SchemaNode): void {
  const m = filter.properties?.requestMirror;
  if (!m) return;
  m.properties ??= {};
  m.properties.percent ??= { type: 'integer', minimum: 0, maximum: 100 };
  m.properties.fraction ??= {
    type: 'object',
    required: ['numerator'],
    properties: { numerator: { type: 'integer', minimum: 0 }, denominator: { type: 'integer', minimum: 1, default: 100 } },
  };
}

function addEnum(node: SchemaNode | undefined, values: unknown[]): void {
  if (node?.enum) for (const v of values) if (!node.enum.includes(v)) node.enum.push(v);
}

function patchHttpFilter(filter: SchemaNode | undefined): void {
  if (!filter?.properties) return;
  addEnum(filter.properties.type, ['CORS', 'ExternalAuth']);
  filter.properties.cors ??= structuredClone(CORS_FILTER);
  filter.properties.externalAuth ??= structuredClone(open);
  addEnum(filter.properties.requestRedirect?.properties?.statusCode, [303, 307, 308]);
  patchMirror(filter);
}

function addProps(node: SchemaNode | undefined, props: Record<string, SchemaNode>, where: string): void {
  if (!node) throw new Error(`schema patch: no node at ${where}`);
  node.properties ??= {};
  for (const [k, v] of Object.entries(props)) node.properties[k] ??= structuredClone(v);
}

type Patcher = (spec: SchemaNode) => void;

const PATCHES: Readonly<Record<string, Patcher>> = {
  'gateway.networking.k8s.io.v1.HTTPRoute': (spec) => {
    addProps(schemaAt(spec, 'rules[]'), { name: sectionName, retry: HTTP_ROUTE_RETRY, sessionPersistence: SESSION_PERSISTENCE }, 'rules[]');
    patchHttpFilter(schemaAt(spec, 'rules[].filters[]'));
    patchHttpFilter(schemaAt(spec, 'rules[].backendRefs[].filters[]'));
  },
  'gateway.networking.k8s.io.v1alpha2.GRPCRoute': (spec) => {
    addProps(schemaAt(spec, 'rules[]'), { name: sectionName, sessionPersistence: SESSION_PERSISTENCE }, 'rules[]');
    const f = schemaAt(spec, 'rules[].filters[]');
    if (f) patchMirror(f);
    const bf = schemaAt(spec, 'rules[].backendRefs[].filters[]');
    if (bf) patchMirror(bf);
  },
  'gateway.networking.k8s.io.v1.Gateway': (spec) => {
    addProps(spec, { allowedListeners: open, tls: open }, 'spec');
    addProps(schemaAt(spec, 'infrastructure'), { parametersRef: open }, 'infrastructure');
    addProps(schemaAt(spec, 'listeners[].tls'), { frontendValidation: open }, 'listeners[].tls');
  },
  'networking.istio.io.v1beta1.VirtualService': (spec) => {
    const dest: SchemaNode | undefined = schemaAt(spec, 'http[].route[].destination');
    addProps(schemaAt(spec, 'http[]'), {
      mirrors: {
        type: 'array',
        items: {
          type: 'object',
          required: ['destination'],
          properties: { destination: structuredClone(dest ?? open), percentage: { type: 'object', properties: { value: { type: 'number' } } } },
        },
      },
    }, 'http[]');
    addProps(schemaAt(spec, 'http[].rewrite'), { uriRegexRewrite: { type: 'object', properties: { match: str, rewrite: str } } }, 'http[].rewrite');
    addProps(schemaAt(spec, 'http[].retries'), { retryIgnorePreviousHosts: bool, backoff: str }, 'http[].retries');
    // `mirrors[].destination.host` gets the same checks as route destinations.
    const md = schemaAt(spec, 'http[].mirrors[].destination.host');
    if (md) md['x-trellis-check'] = 'istioHost';
  },
  'networking.istio.io.v1beta1.DestinationRule': (spec) => {
    for (const p of ['trafficPolicy', 'subsets[].trafficPolicy']) {
      addProps(schemaAt(spec, p), { proxyProtocol: { type: 'object', properties: { version: { type: 'string', enum: ['V1', 'V2'] } } } }, p);
      addProps(schemaAt(spec, `${p}.connectionPool.http`), { maxConcurrentStreams: { type: 'integer' } }, p);
      addProps(schemaAt(spec, `${p}.connectionPool.tcp`), { idleTimeout: { type: 'string', 'x-trellis-check': 'duration' } }, p);
    }
  },
  'security.istio.io.v1.AuthorizationPolicy': (spec) => addProps(spec, { targetRef: policyTargetRef, targetRefs: { type: 'array', items: policyTargetRef } }, 'spec'),
  'security.istio.io.v1.RequestAuthentication': (spec) => {
    addProps(spec, { targetRef: policyTargetRef, targetRefs: { type: 'array', items: policyTargetRef } }, 'spec');
    addProps(schemaAt(spec, 'jwtRules[]'), { timeout: str, fromCookies: { type: 'array', items: str }, spaceDelimitedClaims: { type: 'array', items: str } }, 'jwtRules[]');
  },
};

/** Adds the newer fields for `schemaId` into its spec schema (in place). */
export function applyPatches(schemaId: string, spec: SchemaNode): void {
  PATCHES[schemaId]?.(spec);
}
