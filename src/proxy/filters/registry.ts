/**
 * The registry of HTTP filter kinds, by name and by typed_config type URL (Envoy looks the type
 * URL up first, then the name), and the builder that turns an HttpConnectionManager's
 * `http_filters` list into factories. Unknown filters are config errors (NACK) unless
 * `is_optional`; `disabled` filters are skipped; the router must come last. Slots that later
 * issues fill (Trellis stats and tracing) are registered as pass-through
 * filters so configs naming them are accepted today; `register()` replaces a slot.
 */
import { configError, optArr, optBool, optObj, optStr, type Json } from '../xds-json.ts';
import type { FilterFactoryContext, FilterRegistration, HttpFilter, HttpFilterFactory } from '../http/stream.ts';
import type { PerFilterConfigParser } from '../router/route-action.ts';
import { corsFilter } from './cors.ts';
import { faultFilter } from './fault.ts';
import { routerFilter } from '../router/router.ts';
import { rbacHttpFilter } from './rbac/rbac-http.ts';
import { jwtAuthnFilter } from './jwt/jwt-authn.ts';
import { extAuthzFilter } from './ext-authz/ext-authz.ts';

/** A pass-through registration for a filter slot filled by a later issue. */
export function passThroughFilter(name: string, typeUrls: readonly string[]): FilterRegistration {
  return {
    name,
    typeUrls,
    parsePerRoute: (raw) => raw,
    createFactory: (_cfg, _ctx, _path, configuredName) => ({ name: configuredName, terminal: false, createFilter: () => PASS_THROUGH }),
  };
}

/** A pass-through slot's filter: no hooks, so one object serves every stream. */
const PASS_THROUGH: HttpFilter = Object.freeze({});

/** Filter kinds by name and type URL. */
export class FilterRegistry {
  private readonly byName = new Map<string, FilterRegistration>();
  private readonly byType = new Map<string, FilterRegistration>();

  /** Add or replace a filter kind. */
  register(reg: FilterRegistration): this {
    this.byName.set(reg.name, reg);
    for (const t of reg.typeUrls) this.byType.set(t, reg);
    return this;
  }

  /** Look a filter kind up by typed_config @type, then by name. */
  lookup(name: string, typeUrl: string | undefined): FilterRegistration | undefined {
    return (typeUrl !== undefined ? this.byType.get(typeUrl) : undefined) ?? this.byName.get(name);
  }

  /**
   * Parser for typed_per_filter_config entries, keyed by the *configured* filter name of an HCM.
   * Entries for filters not in the registry are kept as raw JSON (Envoy ignores unknown ones
   * only when optional; we stay lenient because RDS may arrive before the listener).
   */
  perFilterConfigParser(): PerFilterConfigParser {
    return (filterName, raw, path) => {
      const reg = this.lookup(filterName, typeof raw['@type'] === 'string' ? raw['@type'] : undefined);
      return reg?.parsePerRoute ? reg.parsePerRoute(raw, path) : raw;
    };
  }

  /** Build factories for an HCM `http_filters` list. */
  buildChain(httpFilters: unknown, ctx: FilterFactoryContext, path: string): HttpFilterFactory[] {
    const out: HttpFilterFactory[] = [];
    const list = optArr(httpFilters, path);
    list.forEach((raw, i) => {
      const p = `${path}[${i}]`;
      const o = optObj(raw, p) ?? configError(p, 'expected an HttpFilter');
      const name = optStr(o.name, `${p}.name`) ?? configError(`${p}.name`, 'is required');
      if (optBool(o.disabled, `${p}.disabled`)) return;
      const { typed, typeUrl } = unwrapTypedStruct(optObj(o.typed_config, `${p}.typed_config`) ?? {}, `${p}.typed_config`);
      const reg = this.lookup(name, typeUrl);
      if (!reg) {
        if (optBool(o.is_optional, `${p}.is_optional`)) return;
        configError(`${p}.name`, `unknown HTTP filter '${name}'${typeUrl ? ` (${typeUrl})` : ''}`);
      }
      out.push(reg.createFactory(typed as Json, ctx, `${p}.typed_config`, name));
    });
    const routerAt = out.findIndex((f) => f.terminal);
    if (routerAt < 0) configError(path, 'the router filter (envoy.filters.http.router) is required');
    if (routerAt !== out.length - 1) configError(path, 'the router filter must be the last HTTP filter');
    return out;
  }
}

const TypedStructTypes = new Set(['type.googleapis.com/xds.type.v3.TypedStruct', 'type.googleapis.com/udpa.type.v1.TypedStruct']);

/**
 * A filter config given as a TypedStruct (`type_url` + `value`, how control planes ship configs of
 * filters a proxy may not know) is looked up by its inner type URL, as Envoy does, and its value is
 * the config.
 */
function unwrapTypedStruct(typed: Json, path: string): { typed: Json; typeUrl: string | undefined } {
  const t = typed['@type'];
  if (typeof t !== 'string') return { typed, typeUrl: undefined };
  if (!TypedStructTypes.has(t)) return { typed, typeUrl: t };
  const inner = optStr(typed.type_url, `${path}.type_url`) ?? configError(`${path}.type_url`, 'a TypedStruct needs type_url');
  return { typed: { ...(optObj(typed.value, `${path}.value`) ?? {}), '@type': inner }, typeUrl: inner };
}

/** A registry holding the built-in filters and the pass-through slots. */
export function defaultFilterRegistry(): FilterRegistry {
  return new FilterRegistry()
    .register(faultFilter)
    .register(corsFilter)
    .register(routerFilter)
    .register(jwtAuthnFilter)
    .register(extAuthzFilter)
    .register(rbacHttpFilter)
    // Envoy resolves the authority here before the router; our dynamic forward proxy cluster does
    // it when it connects (src/proxy/upstream/cluster.ts), so the filter has nothing to do.
    .register(passThroughFilter('envoy.filters.http.dynamic_forward_proxy', ['type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig']))
    .register(passThroughFilter('trellis.filters.http.stats', ['type.googleapis.com/trellis.filters.http.stats.v1.Stats']))
    .register(passThroughFilter('trellis.filters.http.tracing', ['type.googleapis.com/trellis.filters.http.tracing.v1.Tracing']));
}
