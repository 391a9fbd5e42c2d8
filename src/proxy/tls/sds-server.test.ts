import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { DiscoveryRequestMsg, DiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import { fromAny } from '../../xds/codec.ts';
import { TypeUrl } from '../../xds/types.ts';
import type { WorkloadCertificate } from './identity-agent.ts';
import { sdsServiceDefinition, startSdsServer } from './sds-server.ts';

const cert = (serial: string): WorkloadCertificate => ({ certChain: `chain-${serial}`, privateKey: `key-${serial}`, root: 'root', notBefore: 0, notAfter: 1, serial });

test('SDS server: default and ROOTCA on subscribe, only the names asked for, a renewal pushed to the open stream, NACK logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-sds-'));
  const listeners: ((c: WorkloadCertificate) => void)[] = [];
  const agent = { current: cert('1') as WorkloadCertificate | undefined, onChange: (fn: (c: WorkloadCertificate) => void) => (listeners.push(fn), () => {}) };
  const logs: string[] = [];
  const sds = await startSdsServer(agent, join(dir, 'sds.sock'), (_l, msg) => logs.push(msg));
  const Client = grpc.makeGenericClientConstructor(sdsServiceDefinition, 'SDS');
  const client = new Client(`unix:${join(dir, 'sds.sock')}`, grpc.credentials.createInsecure());
  const stream = (client as unknown as { StreamSecrets(): grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg> }).StreamSecrets();
  stream.on('error', () => {}); // the cancel at the end
  const queue: DiscoveryResponseMsg[] = [];
  let wake: (() => void) | undefined;
  stream.on('data', (m: DiscoveryResponseMsg) => {
    queue.push(m);
    wake?.();
  });
  const next = async () => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    return queue.shift()!;
  };
  try {
    stream.write({ type_url: TypeUrl.Secret, resource_names: ['default'], node: { id: 'envoy' } });
    const first = await next();
    assert.deepEqual(first.resources!.map((r) => fromAny(r).name), ['default']);
    assert.equal((fromAny(first.resources![0]).tls_certificate as { private_key: { inline_string: string } }).private_key.inline_string, 'key-1');
    stream.write({ type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], version_info: first.version_info, response_nonce: first.nonce });
    const both = await next();
    assert.deepEqual(both.resources!.map((r) => fromAny(r).name).sort(), ['ROOTCA', 'default']);
    stream.write({ type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], version_info: both.version_info, response_nonce: both.nonce });
    agent.current = cert('2');
    for (const fn of listeners) fn(agent.current);
    const renewed = await next();
    assert.notEqual(renewed.version_info, both.version_info);
    assert.equal((fromAny(renewed.resources!.find((r) => fromAny(r).name === 'default')!).tls_certificate as { certificate_chain: { inline_string: string } }).certificate_chain.inline_string, 'chain-2');
    stream.write({ type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], version_info: both.version_info, response_nonce: renewed.nonce, error_detail: { code: 3, message: 'bad key' } });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(logs.some((l) => l.includes('NACK')), logs.join('; '));
    assert.equal(sds.streams(), 1);
  } finally {
    stream.cancel();
    client.close();
    await sds.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
