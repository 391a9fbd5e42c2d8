import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StreamInfo } from '../http/stream-info.ts';
import { MtlsStats } from './mtls-stats.ts';
import { parseSpiffeId, PlaintextConnection, type ConnectionSecurity } from './peer-identity.ts';

const minute = 29_000_000;
const now = minute * 60_000;

function info(statPrefix: string, sec: ConnectionSecurity, remote: string, userAgent?: string): StreamInfo {
  return { statPrefix, connectionSecurity: sec, downstreamDirectRemoteAddress: remote, userAgent } as unknown as StreamInfo;
}

function counts(s: MtlsStats): Record<string, number> {
  return Object.fromEntries(s.stats().map((x) => [`${x.labels!.port}|${x.labels!.connection_security_policy}|${x.labels!.client}`, x.value]));
}

test('requests are counted per inbound port, policy and client, whichever connection they came on', () => {
  const s = new MtlsStats();
  const peer = parseSpiffeId('spiffe://cluster.local/ns/default/sa/web')!;
  const connA: ConnectionSecurity = { ...PlaintextConnection, policy: 'mutual_tls', peer };
  const connB: ConnectionSecurity = { ...PlaintextConnection, policy: 'mutual_tls', peer };
  s.record(info('inbound_8080', connA, '10.0.0.1'), now);
  s.record(info('inbound_8080', connA, '10.0.0.1'), now);
  s.record(info('inbound_8080', connB, '10.0.0.2'), now);
  s.record(info('inbound_9090', connB, '10.0.0.2'), now);
  // Plaintext connections share one security object: the address and user-agent still tell clients apart.
  s.record(info('inbound_8080', PlaintextConnection, '10.0.0.3', 'curl'), now);
  s.record(info('inbound_8080', PlaintextConnection, '10.0.0.3', 'curl|x'), now);
  s.record(info('inbound_8080', PlaintextConnection, '10.0.0.4', 'curl'), now);
  s.record(info('inbound_8080', PlaintextConnection, '10.0.0.3', 'curl'), now);
  s.record(info('outbound_8080', PlaintextConnection, '10.0.0.3', 'curl'), now);
  // TLS without a client certificate, from the same client right after its plaintext request: its own policy.
  s.record(info('inbound_8080', { ...PlaintextConnection, policy: 'tls' }, '10.0.0.3', 'curl'), now);
  assert.deepEqual(counts(s), {
    '8080|mutual_tls|cluster.local/ns/default/sa/web': 3,
    '9090|mutual_tls|cluster.local/ns/default/sa/web': 1,
    '8080|none|10.0.0.3 curl': 2,
    '8080|none|10.0.0.3 curl/x': 1,
    '8080|none|10.0.0.4 curl': 1,
    '8080|tls|10.0.0.3 curl': 1,
  });
});

test('past 64 clients a minute, the rest are counted together', () => {
  const s = new MtlsStats();
  for (let i = 0; i < 70; i++) s.record(info('inbound_8080', PlaintextConnection, `10.0.1.${i}`), now);
  const c = counts(s);
  assert.equal(Object.keys(c).length, 65);
  assert.equal(c['8080|none|(other clients)'], 6);
});
