import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findTool } from '../../../test/support/tools.ts';
import { skipUnlessAddon, skipUnlessLinux, skipUnlessRoot, skipUnlessTools } from '../../../test/support/skip.ts';
import { originalDstSupport } from './original-dst.ts';

const skip = skipUnlessLinux('iptables REDIRECT') || skipUnlessRoot('creates a network namespace with an iptables REDIRECT rule')
  || skipUnlessTools('ip', 'iptables') || skipUnlessAddon(originalDstSupport());

test('SO_ORIGINAL_DST recovers the destination an iptables REDIRECT rewrote', { skip }, () => {
  const ns = `trellis-odst-${process.pid}`;
  const ip = findTool('ip')!;
  execFileSync(ip, ['netns', 'add', ns]);
  try {
    execFileSync(ip, ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    execFileSync(ip, ['netns', 'exec', ns, findTool('iptables')!, '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.2', '--dport', '9999', '-j', 'REDIRECT', '--to-ports', '15001']);
    // The probe runs inside the namespace: listens on 15001, dials 127.0.0.2:9999, prints what SO_ORIGINAL_DST says.
    const probe = `
      import net from 'node:net';
      import { originalDestination } from ${JSON.stringify(fileURLToPath(new URL('./original-dst.ts', import.meta.url)))};
      const srv = net.createServer((s) => { console.log(JSON.stringify(originalDestination(s))); s.destroy(); srv.close(); });
      srv.listen(15001, '127.0.0.1', () => { const c = net.connect(9999, '127.0.0.2'); c.on('error', () => {}); });
    `;
    const out = spawnSync(ip, ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim()), { ip: '127.0.0.2', port: 9999 });
  } finally {
    spawnSync(ip, ['netns', 'delete', ns]);
  }
});
