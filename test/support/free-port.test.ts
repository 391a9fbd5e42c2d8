import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from './processes.ts';

test('freePort hands out distinct bindable ports below the ephemeral range', async () => {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const ports: number[] = [];
  for (let i = 0; i < 20; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length, 'no port twice');
  for (const p of ports) assert.ok(p < low!, `${p} is below the ephemeral range starting at ${low}`);
  const s = createServer();
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(ports[0], '127.0.0.1', resolve); });
  await new Promise<void>((r) => s.close(() => r()));
});
