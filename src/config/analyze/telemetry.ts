/**
 * DEPRECATED (warning, IST0002): a Telemetry that sends traces to a MeshConfig extension provider of
 * a type Istio has deprecated and dropped — `lightstep` (use `opentelemetry`; Lightstep accepts
 * OTLP), `opencensus` (replaced by OpenTelemetry). Needs the mesh config
 * (`trellis analyze --mesh-config`) to know the providers' types.
 */
import { ResourceTypes } from '../resource.ts';
import { extensionProviderKind } from '../mesh-config.ts';
import type { AnalysisContext } from './context.ts';
import { list, view } from './view.ts';

const DeprecatedProviders: Readonly<Record<string, string>> = {
  lightstep: 'the Lightstep provider is deprecated and removed from Istio; send traces with the opentelemetry provider (Lightstep accepts OTLP)',
  opencensus: 'the OpenCensus provider is deprecated; use the opentelemetry provider',
};

interface TelemetryView {
  readonly tracing?: readonly { readonly providers?: readonly { readonly name?: string }[] }[];
}

/** Runs DEPRECATED over Telemetry tracing providers. */
export function checkTelemetry(ctx: AnalysisContext): void {
  const providers = ctx.mesh.extensionProviders ?? [];
  if (providers.length === 0) return;
  const kinds = new Map(providers.map((p) => [p.name, extensionProviderKind(p)]));
  for (const t of ctx.of(ResourceTypes.Telemetry)) {
    list(view<TelemetryView>(t).tracing).forEach((tr, i) => {
      list(tr?.providers).forEach((p, k) => {
        const kind = typeof p?.name === 'string' ? kinds.get(p.name) : undefined;
        const why = kind === undefined ? undefined : DeprecatedProviders[kind];
        if (why !== undefined) ctx.report(t, 'warning', 'DEPRECATED', `tracing provider '${p?.name}' is a ${kind} provider: ${why}`, `spec.tracing[${i}].providers[${k}]`);
      });
    });
  }
}
