/**
 * `.trellisignore`: names a directory's loader should pass over, one pattern per line (`#`
 * comments, `*` wildcards within a name, a trailing `/` for directories only), like
 * `.helmignore`. Both `trellis analyze` and the control plane's file store honour it, so a
 * folder of alternatives (the demo's walkthrough steps, each a replacement for one file) can live
 * next to the config it applies to without being loaded as duplicates of it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const IGNORE_FILE = '.trellisignore';

/** Is this entry of `dir` ignored? Reads `dir/.trellisignore` (absent = nothing ignored). */
export function ignoreMatcher(dir: string): (name: string, isDir: boolean) => boolean {
  let text: string;
  try {
    text = readFileSync(join(dir, IGNORE_FILE), 'utf8');
  } catch {
    return () => false;
  }
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const dirOnly = l.endsWith('/');
      const pat = (dirOnly ? l.slice(0, -1) : l).replace(/^\.\//, '');
      const re = new RegExp(`^${pat.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
      return { re, dirOnly };
    });
  return (name, isDir) => rules.some((r) => (!r.dirOnly || isDir) && r.re.test(name));
}
