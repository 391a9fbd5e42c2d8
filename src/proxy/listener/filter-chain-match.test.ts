import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectFilterChain, longestCidrMatch, type ConnectionFacts } from './filter-chain-match.ts';

const base: ConnectionFacts = {
  destinationPort: 8080, destinationIp: '10.0.0.5', sourceIp: '10.0.0.9', sourcePort: 5555,
  serverName: '', transportProtocol: 'raw_buffer', applicationProtocols: [],
};

test('CIDR matching, v4 and v6', () => {
  assert.equal(longestCidrMatch([{ address_prefix: '10.0.0.0', prefix_len: 8 }, { address_prefix: '10.0.0.0', prefix_len: 24 }], '10.0.0.5'), 24);
  assert.equal(longestCidrMatch([{ address_prefix: '192.168.0.0', prefix_len: 16 }], '10.0.0.5'), -1);
  assert.equal(longestCidrMatch([{ address_prefix: '::1', prefix_len: 128 }], '::1'), 128);
  assert.equal(longestCidrMatch([{ address_prefix: '127.0.0.1', prefix_len: 32 }], '::ffff:127.0.0.1'), 32);
});

test('destination port beats a catch-all, unknown port falls to the catch-all', () => {
  const matches = [undefined, { destination_port: 8080 }, { destination_port: 9090 }];
  assert.equal(selectFilterChain(matches, base), 1);
  assert.equal(selectFilterChain(matches, { ...base, destinationPort: 1 }), 0);
});

test('SNI: exact beats wildcard beats none; TLS chains need tls transport', () => {
  const matches = [
    { transport_protocol: 'tls', server_names: ['*.example.com'] },
    { transport_protocol: 'tls', server_names: ['api.example.com'] },
    { transport_protocol: 'raw_buffer' },
  ];
  const tls = { ...base, transportProtocol: 'tls' };
  assert.equal(selectFilterChain(matches, { ...tls, serverName: 'api.example.com' }), 1);
  assert.equal(selectFilterChain(matches, { ...tls, serverName: 'web.example.com' }), 0);
  assert.equal(selectFilterChain(matches, { ...tls, serverName: 'other.org' }), -1);
  assert.equal(selectFilterChain(matches, base), 2);
});

test('ALPN and source type narrow in order', () => {
  const matches = [
    { application_protocols: ['h2'] },
    { application_protocols: ['http/1.1'] },
    { source_type: 'SAME_IP_OR_LOOPBACK' as const },
  ];
  assert.equal(selectFilterChain(matches, { ...base, applicationProtocols: ['h2', 'http/1.1'] }), 0);
  assert.equal(selectFilterChain(matches, { ...base, applicationProtocols: ['http/1.1'] }), 1);
  assert.equal(selectFilterChain(matches, { ...base, sourceIp: '127.0.0.1' }), 2);
  assert.equal(selectFilterChain(matches, base), -1);
});

test('destination prefix ranges prefer the longest', () => {
  const matches = [{ prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] }, { prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 16 }] }];
  assert.equal(selectFilterChain(matches, base), 1);
});
