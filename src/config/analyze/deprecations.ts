/**
 * DEPRECATED (warning, IST0002), after Istio's deprecation analyzer:
 * - a VirtualService http fault `delay.percent` (an integer; Trellis still applies it, as Istio
 *   does): use `delay.percentage.value`;
 * - a Sidecar `outboundTrafficPolicy.egressProxy`: ignored, by Istio and by Trellis;
 * - a Telemetry that sends traces to a MeshConfig extension provider of a type Istio deprecated
 *   and dropped — `lightstep` (use `opentelemetry`; Lightstep accepts OTLP), `opencensus`. Needs
 *   the mesh config (`trellis analyze --mesh-config`, or the istio ConfigMap) to know the
 *   providers' types.
 */
import { ResourceTypes } from '../resource.ts';
import { extensionProviderKind } from '../mesh-config.ts';
import type { AnalysisContext } from './context.ts';
import { list, view, type SidecarView, type TelemetryView, type VirtualServiceView } from '../views.ts';

const DeprecatedProviders: Readonly<Record<string, string>> = {
  lightstep: 'the Lightstep provider is deprecated and removed from Istio; send traces with the opentelemetry provider (Lightstep accepts OTLP)',
  opencensus: 'the OpenCensus provider is deprecated; use the opentelemetry provider',
};

/** Runs the DEPRECATED checks. */
export function checkDeprecations(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    list(view<VirtualServiceView>(vs).http).forEach((h, i) => {
      if (h?.fault?.delay?.percent === undefined) return;
      ctx.report(vs, 'warning', 'DEPRECATED', `http route ${i}: fault.delay.percent is deprecated; use fault.delay.percentage.value (a number, fractions allowed)`, `spec.http[${i}].fault.delay.percent`);
    });
  }
  for (const sc of ctx.of(ResourceTypes.Sidecar)) {
    const otp = view<SidecarView>(sc).outboundTrafficPolicy;
    if (otp?.egressProxy === undefined) continue;
    ctx.report(sc, 'warning', 'DEPRECATED', 'outboundTrafficPolicy.egressProxy is deprecated and ignored: unknown destinations are not sent to it; route egress through an egress gateway with a ServiceEntry and VirtualService', 'spec.outboundTrafficPolicy.egressProxy');
  }
  checkTracingProviders(ctx);
}

function checkTracingProviders(ctx: AnalysisContext): void {
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
