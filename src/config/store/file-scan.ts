/**
 * Listing the config files of a directory tree for the file store: `.yaml`, `.yml` and `.json`,
 * recursively, following symlinks (guarded against loops), in deterministic path order. Names
 * starting with a dot are skipped: editor swap/backup files, `.git`, and the `..data` /
 * `..<timestamp>` entries of a Kubernetes ConfigMap volume (whose visible files are symlinks into
 * them, so each file is still read exactly once). Never throws: a directory that vanishes or
 * cannot be read mid-scan is skipped, and the next watch event or rescan catches up.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { ignoreMatcher } from '../ignore-file.ts';
import { join } from 'node:path';
import { comparePaths } from './file-state.ts';

const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Whether a file name is one the file store reads. */
export function isConfigFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && CONFIG_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Config files under `absRoot`, as a map absolute path -> display path (`displayRoot` joined
 * with the relative path), in path order. `dirs`, if given, receives every directory walked
 * below the root (absolute paths), for watching.
 */
export async function listConfigFiles(absRoot: string, displayRoot: string, dirs?: Set<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  const walk = async (abs: string, display: string): Promise<void> => {
    let real: string;
    try {
      real = await realpath(abs);
    } catch {
      return;
    }
    if (seen.has(real)) return; // symlink loop
    seen.add(real);
    let dirents;
    try {
      dirents = await readdir(abs, { withFileTypes: true });
    } catch {
      return;
    }
    dirents.sort((a, b) => comparePaths(a.name, b.name));
    const ignored = ignoreMatcher(abs);
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      const childAbs = join(abs, d.name);
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        try {
          const s = await stat(childAbs);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue; // dangling link
        }
      }
      if (ignored(d.name, isDir)) continue;
      if (isDir) {
        dirs?.add(childAbs);
        await walk(childAbs, join(display, d.name));
      }
      else if (isFile && isConfigFile(d.name)) out.set(childAbs, join(display, d.name));
    }
  };
  await walk(absRoot, displayRoot);
  return out;
}
