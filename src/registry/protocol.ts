/**
 * Istio's protocol selection for a service port: explicit `appProtocol` first, then the port
 * name (`<protocol>` or `<protocol>-<suffix>`, case-insensitive), then the L4 protocol (UDP);
 * anything else is UNKNOWN (Istio would sniff it; translation treats it as TCP). Mirrors
 * https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/.
 */
import type { PortProtocol } from './types.ts';

const byName: Readonly<Record<string, PortProtocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'HTTP',
  h2c: 'HTTP2',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'MONGO',
  redis: 'REDIS',
  mysql: 'MYSQL',
  udp: 'UDP',
};

/** Kubernetes' standard appProtocol values (KEP-3726) that Istio maps. */
const byAppProtocol: Readonly<Record<string, PortProtocol>> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/** Parses a protocol word (ServiceEntry `protocol`, appProtocol); undefined when unknown. */
export function parseProtocol(value: string | undefined): PortProtocol | undefined {
  if (value === undefined || value === '') return undefined;
  const lower = value.toLowerCase();
  return byAppProtocol[lower] ?? byName[lower];
}

/** The protocol of a Kubernetes Service port, by Istio's precedence rules. */
export function servicePortProtocol(port: { name?: string; appProtocol?: string; protocol?: string }): PortProtocol {
  const fromApp = parseProtocol(port.appProtocol);
  if (fromApp !== undefined) return fromApp;
  if (port.protocol !== undefined && port.protocol.toUpperCase() === 'UDP') return 'UDP';
  const name = (port.name ?? '').toLowerCase();
  if (name !== '') {
    // `grpc-web` must win over the `grpc` prefix.
    if (name === 'grpc-web' || name.startsWith('grpc-web-')) return 'HTTP';
    const dash = name.indexOf('-');
    const prefix = dash === -1 ? name : name.slice(0, dash);
    const p = byName[prefix];
    if (p !== undefined) return p;
  }
  return 'UNKNOWN';
}

/** True for protocols carried through the HTTP connection manager. */
export function isHttpProtocol(p: PortProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC';
}

/** True for protocols whose upstream connections must speak HTTP/2. */
export function isHttp2Protocol(p: PortProtocol): boolean {
  return p === 'HTTP2' || p === 'GRPC';
}
