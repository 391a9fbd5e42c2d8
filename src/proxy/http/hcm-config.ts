/**
 * An HttpConnectionManager config (proto3 JSON) compiled once, before it serves a connection: its
 * options (hcm-options.ts), where its routes come from (an inline route table compiled now, or an
 * RDS name looked up per request), its HTTP filter factories (from the filter kinds the proxy was
 * assembled with), its tracing config and its access logs. Every error names its field path, so
 * the xDS client NACKs a bad listener before anything of it serves; the connection manager
 * (connection-manager.ts) only serves what this module read.
 */
import type { ClusterManager } from '../upstream/types.ts';
import { configError, optObj, optStr, type Json } from '../xds-json.ts';
import { compileRouteConfiguration, type CompiledRouteTable } from '../router/route-table.ts';
import { parseTracingConfig, type TracingConfig } from '../tracing/tracing-config.ts';
import { AccessLogs } from '../access-log/access-logs.ts';
import type { LogFiles } from '../access-log/log-files.ts';
import { parseHcmOptions, type HcmOptions } from './hcm-options.ts';
import type { FilterFactoryContext, HttpFilterFactory, HttpFilterKinds } from './stream.ts';

/** Where a connection manager's routes come from: a table of its own, or an RDS resource by name. */
export type HcmRoutes = { readonly table: CompiledRouteTable; readonly rdsName?: undefined } | { readonly table?: undefined; readonly rdsName: string };

/** One connection manager's compiled config. */
export interface HcmConfig {
  readonly options: HcmOptions;
  readonly routes: HcmRoutes;
  /** Filter factories in order, the router last. */
  readonly filters: readonly HttpFilterFactory[];
  /** `tracing`, validated; the tracer is built by whoever has the span sinks. */
  readonly tracing: TracingConfig | undefined;
  /** `access_log` loggers (undefined when there are none, or no log files to write them to). */
  readonly accessLogs: AccessLogs | undefined;
}

/** What compiling needs besides the JSON. */
export interface HcmConfigContext {
  readonly filterKinds: HttpFilterKinds;
  readonly clusterManager: ClusterManager;
  readonly random: () => number;
  /** Whether RDS names can be resolved (a route provider exists). */
  readonly rds: boolean;
  /** Where `access_log` file loggers write (without it `access_log` is ignored). */
  readonly logFiles?: LogFiles;
  /** The enclosing listener's `metadata.filter_metadata`, handed to filter factories. */
  readonly listenerMetadata?: Readonly<Record<string, Json>>;
}

/** Compiles an HttpConnectionManager; throws TrellisError(XDS_INVALID) naming the field on bad config. */
export function compileHcmConfig(c: Json, ctx: HcmConfigContext, path: string): HcmConfig {
  const options = parseHcmOptions(c, path);
  let routes: HcmRoutes;
  if (c.route_config !== undefined) {
    routes = { table: compileRouteConfiguration(c.route_config, ctx.filterKinds, `${path}.route_config`) };
  } else if (c.rds !== undefined) {
    const rdsName = optStr(optObj(c.rds, `${path}.rds`)?.route_config_name, `${path}.rds.route_config_name`);
    if (!rdsName) configError(`${path}.rds.route_config_name`, 'is required');
    if (!ctx.rds) configError(`${path}.rds`, 'RDS needs a route provider');
    routes = { rdsName };
  } else {
    return configError(path, 'one of route_config or rds is required (scoped_routes is not supported)');
  }
  const filterCtx: FilterFactoryContext = { clusterManager: ctx.clusterManager, random: ctx.random, statPrefix: options.statPrefix, listenerMetadata: ctx.listenerMetadata };
  const filters = ctx.filterKinds.buildChain(c.http_filters, filterCtx, `${path}.http_filters`);
  const tracingJson = optObj(c.tracing, `${path}.tracing`);
  const tracing = tracingJson === undefined ? undefined : parseTracingConfig(tracingJson, `${path}.tracing`);
  const accessLogs = ctx.logFiles !== undefined ? AccessLogs.parse(c.access_log, `${path}.access_log`, ctx.logFiles) : undefined;
  return Object.freeze({ options, routes, filters: Object.freeze(filters), tracing, accessLogs });
}
