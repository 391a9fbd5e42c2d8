/**
 * Cheap checks behind the README's first steps: the walkthrough names every demo step file (and
 * only existing ones) and never tells a user to run `npx trellis` outside the checkout; and every
 * dependency whose install script `npm ci` runs is listed in package.json's allowScripts, so npm
 * prints no "install scripts not yet covered" notice. (The walkthrough's outputs themselves are
 * checked through the gateway by test/up-demo.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

test('the README walkthrough uses every demo step file, and only existing ones', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const named = new Set([...readme.matchAll(/examples\/demo\/steps\/([\w.-]+\.yaml)/g)].map((m) => m[1]));
  const files = readdirSync(join(root, 'examples/demo/steps')).filter((f) => f.endsWith('.yaml'));
  assert.deepEqual([...named].sort(), files.sort());
  for (const f of named) assert.ok(existsSync(join(root, 'examples/demo/steps', f)), f);
  const commands = [...readme.matchAll(/```(?:sh|console)\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
  assert.doesNotMatch(commands, /npx trellis/, 'README commands use the installed `trellis`');
});

test('every dependency with an install script is in allowScripts', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.hasInstallScript === true).map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(withScripts.length > 0);
  for (const name of new Set(withScripts)) assert.equal(pkg.allowScripts?.[name], true, `${name} runs an install script; add it to allowScripts`);
});
