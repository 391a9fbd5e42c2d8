import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { podIptablesRules, run, which } from '../runtime/netns.ts';
import { skipUnlessRoot, skipUnlessTools } from '../../test/support/skip.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'trellis.js');

function trellis(args: string[], prefix: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...rest] = prefix.length > 0 ? [...prefix, process.execPath] : [process.execPath];
  return new Promise((resolve) => {
    execFile(cmd, [...rest, bin, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('trellis capture --dry-run prints the transparent-mode rules with the exclusions; bad ports are a usage error', async () => {
  const r = await trellis(['capture', '--dry-run', '--exclude-inbound-ports', '8081', '--exclude-outbound-ports', '5432,6379']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, podIptablesRules({ excludeInboundPorts: [8081], excludeOutboundPorts: [5432, 6379] }));
  assert.match(r.stdout, /-A ISTIO_INBOUND -p tcp --dport 8081 -j RETURN/);
  assert.match(r.stdout, /-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN/);
  assert.ok(podIptablesRules().includes('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001'));
  const bad = await trellis(['capture', '--exclude-outbound-ports', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /capture: --exclude-outbound-ports takes ports 1\.\.65535, got 'x'/);
});

const netnsSkip = skipUnlessRoot('creates a network namespace') || skipUnlessTools('ip', 'iptables-restore', 'iptables-save');

test('trellis capture installs the rules in the network namespace it runs in (as the init container does)', { skip: netnsSkip }, async () => {
  const ns = `tcap-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const r = await trellis(['capture'], ['ip', 'netns', 'exec', ns]);
    assert.equal(r.code, 0, r.stderr);
    const rules = await run('ip', ['netns', 'exec', ns, which('iptables-save')!, '-t', 'nat']);
    assert.match(rules, /-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN/);
    assert.match(rules, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    // The host's own nat table is untouched.
    assert.doesNotMatch(await run(which('iptables-save')!, ['-t', 'nat']), /ISTIO_OUTPUT/);
  } finally {
    await run('ip', ['netns', 'delete', ns]).catch(() => {});
  }
});
