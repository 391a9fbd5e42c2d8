import { test } from 'node:test';
import assert from 'node:assert/strict';
import { servicePortProtocol, parseProtocol } from './protocol.ts';

test('port name prefixes select the protocol', () => {
  assert.equal(servicePortProtocol({ name: 'http' }), 'HTTP');
  assert.equal(servicePortProtocol({ name: 'http-web' }), 'HTTP');
  assert.equal(servicePortProtocol({ name: 'HTTP2-x' }), 'HTTP2');
  assert.equal(servicePortProtocol({ name: 'grpc-api' }), 'GRPC');
  assert.equal(servicePortProtocol({ name: 'grpc-web' }), 'HTTP');
  assert.equal(servicePortProtocol({ name: 'tcp-db' }), 'TCP');
  assert.equal(servicePortProtocol({ name: 'https' }), 'HTTPS');
  assert.equal(servicePortProtocol({ name: 'httpx' }), 'UNKNOWN');
  assert.equal(servicePortProtocol({ name: 'web' }), 'UNKNOWN');
  assert.equal(servicePortProtocol({}), 'UNKNOWN');
});

test('appProtocol wins over the name; UDP from the L4 protocol', () => {
  assert.equal(servicePortProtocol({ name: 'tcp', appProtocol: 'http' }), 'HTTP');
  assert.equal(servicePortProtocol({ name: 'x', appProtocol: 'kubernetes.io/h2c' }), 'HTTP2');
  assert.equal(servicePortProtocol({ name: 'x', appProtocol: 'unknown-thing' }), 'UNKNOWN');
  assert.equal(servicePortProtocol({ name: 'dns', protocol: 'UDP' }), 'UDP');
  assert.equal(parseProtocol('GRPC'), 'GRPC');
  assert.equal(parseProtocol(''), undefined);
});
