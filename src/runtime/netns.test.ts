import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { skipUnlessRoot, skipUnlessTools } from '../../test/support/skip.ts';
import { claimMeshNetwork, networkOfBridge, PodAddresses, removeBridge, resolvConf, slotNetwork, which } from './netns.ts';

test('slot K is bridge trellisK with 10.212.K.1/24; only our bridge names map back to a slot', () => {
  assert.deepEqual(slotNetwork(0), { bridge: 'trellis0', address: '10.212.0.1', subnet: '10.212.0.0/24' });
  assert.deepEqual(networkOfBridge('trellis17'), slotNetwork(17));
  for (const other of ['trellis', 'trellis256', 'trellis-x', 'xtrellis1', 'tv0a0b0c', 'trellis1a']) assert.equal(networkOfBridge(other), undefined, other);
});

test('pod addresses come from the mesh /24, are reused after release, and run out with a clear error', () => {
  const pods = new PodAddresses(slotNetwork(3));
  assert.equal(pods.take(), '10.212.3.2');
  assert.equal(pods.take(), '10.212.3.3');
  pods.release('10.212.3.2');
  assert.equal(pods.take(), '10.212.3.2');
  for (let i = 4; i < 255; i++) pods.take();
  assert.throws(() => pods.take(), (e: Error & { code?: string }) => e.code === 'RUNTIME_NET' && /10\.212\.3\.0\/24/.test(e.message));
});

test('resolv.conf names the mesh responder and the Kubernetes search path', () => {
  assert.equal(resolvConf('shop', '10.212.4.1'), '# written by trellis up (transparent capture)\nnameserver 10.212.4.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
});

const ip = which('ip');
test('two meshes claiming at once get different bridges and subnets; removal frees the slot', { skip: skipUnlessRoot('creates bridges') || skipUnlessTools('ip') }, async () => {
  const claimed: string[] = [];
  try {
    const [a, b] = await Promise.all([claimMeshNetwork((n) => claimed.push(n.bridge)), claimMeshNetwork((n) => claimed.push(n.bridge))]);
    assert.notEqual(a.bridge, b.bridge);
    assert.notEqual(a.subnet, b.subnet);
    const addrs = execFileSync(ip!, ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
    assert.match(addrs, new RegExp(`${a.bridge}\\s+inet ${a.address.replace(/\./g, '\\.')}/24`));
    assert.match(addrs, new RegExp(`${b.bridge}\\s+inet ${b.address.replace(/\./g, '\\.')}/24`));
    await removeBridge(a.bridge);
    const c = await claimMeshNetwork((n) => claimed.push(n.bridge));
    // The freed slot (or a lower one freed meanwhile by another mesh on this machine) is reused: slots do not leak.
    assert.ok(Number(c.bridge.slice(7)) <= Number(a.bridge.slice(7)), `${c.bridge} after freeing ${a.bridge}`);
  } finally {
    for (const name of claimed) await removeBridge(name);
  }
  const links = execFileSync(ip!, ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const name of claimed) assert.doesNotMatch(links, new RegExp(`^\\d+: ${name}[:@]`, 'm'));
});
