/**
 * Human-readable text about a run: the summary `trellis up` prints once everything is ready
 * (gateway URL, control-plane ports, one line per process with its ports and log), shared by the
 * foreground and `--detach` paths.
 */
import { relative } from 'node:path';
import type { RuntimeState } from './state.ts';

const MAX_ROUTES = 6;

/** The multi-line summary of a ready run. */
export function formatSummary(state: RuntimeState, startedMs?: number): string {
  const lines: string[] = [];
  const took = startedMs !== undefined ? ` in ${((Date.now() - startedMs) / 1000).toFixed(1)} s` : '';
  lines.push(`trellis: mesh is up${took} (${state.capture} capture, state in ${rel(state.stateDir)})`);
  if (state.gatewayUrl) {
    const ports = Object.entries(state.gatewayPorts).map(([k, v]) => `${k}->${v}`).join(', ');
    lines.push(`  gateway      ${state.gatewayUrl}   (Istio Gateway ports ${ports})`);
  }
  if (state.dns) lines.push(`  network      bridge ${state.bridge ?? '-'} ${state.subnet ?? ''}, DNS ${state.dns} (Service VIPs in 240.240.0.0/16)`);
  if (state.prometheusUrl) lines.push(`  prometheus   ${state.prometheusUrl}   (scrapes every proxy's /stats/prometheus and the control plane's /metrics)`);
  if (state.controlDebugPort) lines.push(`  control      xDS 127.0.0.1:${state.controlXdsPort}, debug http://127.0.0.1:${state.controlDebugPort}/debug/syncz`);
  lines.push('', `  ${'PROCESS'.padEnd(44)} ${'PID'.padEnd(8)} PORTS`);
  for (const p of state.processes) {
    const ports = Object.entries(p.ports).map(([k, v]) => `${k}=${v}`).join(' ');
    const where = p.netns !== undefined ? `  (netns ${p.netns}, ${p.address})` : '';
    lines.push(`  ${`${p.role} ${p.replica ?? p.name}`.padEnd(44)} ${String(p.pid).padEnd(8)} ${ports}${where}`);
  }
  lines.push('');
  const routes = (state.gatewayRoutes ?? []).filter((r) => r.curl !== '');
  if (routes.length > 0) {
    lines.push(`try:   ${routes[0].curl}`);
    const more = routes.slice(1, MAX_ROUTES);
    if (more.length > 0) lines.push(`       other routes of the gateway:`, ...more.map((r) => `         ${r.curl}`));
    if (routes.length > MAX_ROUTES) lines.push(`         (${routes.length - MAX_ROUTES} more: trellis proxy-config routes istio-ingressgateway)`);
  } else if (state.gatewayUrl) {
    lines.push(`try:   (the gateway serves no route yet; it listens on ${state.gatewayUrl})`);
  }
  lines.push(`look:  trellis status${stateFlag(state)}; trellis proxy-status${stateFlag(state)}; trellis proxy-config routes <replica>${stateFlag(state)}`);
  lines.push(`stop:  trellis down${stateFlag(state)}`);
  return lines.join('\n') + '\n';
}

function rel(p: string): string {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
}

function stateFlag(state: RuntimeState): string {
  return rel(state.stateDir) === '.trellis' ? '' : ` --state-dir ${rel(state.stateDir)}`;
}
