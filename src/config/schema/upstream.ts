/**
 * The upstream OpenAPI schemas of the Istio and Gateway API CRDs, taken from the typed model
 * packages (@kubernetes-models/istio, @kubernetes-models/gateway-api). Those packages register
 * each schema with their own ajv instance lazily through `@kubernetes-models/validate`'s
 * `register(id, schema)`; we load the CommonJS builds and capture the schema objects that
 * `register` receives, once, so that our own validator (validate.ts) can interpret them.
 * Captured schemas are deep-cloned so our annotations never touch the packages' copies.
 */
import { createRequire } from 'node:module';
import type { SchemaNode } from './types.ts';

const require = createRequire(import.meta.url);

interface ValidateModule { register: (id: string, schema: unknown) => void }
type ModelCtor = { prototype: object };

/** Model modules whose schemas we use, by package path and exported class name. */
const MODELS: ReadonlyArray<readonly [string, string]> = [
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService', 'VirtualService'],
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule', 'DestinationRule'],
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway', 'Gateway'],
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry', 'ServiceEntry'],
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/WorkloadEntry', 'WorkloadEntry'],
  ['@kubernetes-models/istio/networking.istio.io/v1beta1/Sidecar', 'Sidecar'],
  ['@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication', 'PeerAuthentication'],
  ['@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication', 'RequestAuthentication'],
  ['@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy', 'AuthorizationPolicy'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass', 'GatewayClass'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway', 'Gateway'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute', 'HTTPRoute'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute', 'GRPCRoute'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/ReferenceGrant', 'ReferenceGrant'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute', 'TCPRoute'],
  ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TLSRoute', 'TLSRoute'],
];

let captured: Map<string, SchemaNode> | undefined;

/**
 * All captured schemas by id (`networking.istio.io.v1beta1.VirtualService`,
 * `gateway.networking.k8s.io.v1.HTTPRoute`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, ...).
 */
export function upstreamSchemas(): Map<string, SchemaNode> {
  if (captured) return captured;
  const out = new Map<string, SchemaNode>();
  for (const [modPath, className] of MODELS) {
    // Each package may resolve its own copy of @kubernetes-models/validate: patch the one it uses.
    const modFile = require.resolve(modPath);
    const validateMod = createRequire(modFile)('@kubernetes-models/validate') as ValidateModule;
    const original = validateMod.register;
    validateMod.register = (id, schema) => { if (!out.has(id)) out.set(id, structuredClone(schema) as SchemaNode); };
    try {
      const ctor = (require(modPath) as Record<string, ModelCtor>)[className];
      const proto = ctor.prototype as Record<symbol, unknown>;
      for (const sym of Object.getOwnPropertySymbols(proto)) {
        const fn = proto[sym];
        if (typeof fn === 'function') (fn as () => void)();
      }
    } finally {
      validateMod.register = original;
    }
  }
  captured = out;
  return out;
}
