/**
 * FileStore: the embedded default ConfigStore — a directory tree (or one file) of multi-document
 * YAML/JSON, watched. It owns the I/O side: scanning (recursive; `.yaml`/`.yml`/`.json`; dot-files
 * and dot-directories skipped, which also skips editor swap files and the `..data` links of a
 * Kubernetes ConfigMap mount), watching each directory of the tree with `fs.watch` (not
 * `{ recursive: true }`: on Linux, Node's recursive watcher stops reporting a file after it has
 * been replaced by rename a couple of times, which is how editors and `kubectl`-style tools
 * write, and changes then waited for the rescan) plus a periodic safety
 * rescan (watch events are hints, never the truth: every reload re-lists the tree and compares
 * file signatures, so missed, partial or coalesced events cannot lose a change), debouncing
 * bursts of writes into one batch, and never letting an I/O or watcher error escape.
 * What each file contributes and how files merge (last-known-good, duplicates) is `file-state.ts`.
 */
import { watch as fsWatch } from 'node:fs';
import type { FSWatcher, Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { TrellisError, describeError } from '../../errors.ts';
import { parseConfigText } from '../load.ts';
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import { listConfigFiles } from './file-scan.ts';
import { StoreDiagnosticCodes, applyParse, comparePaths, mergeFiles, readFailed } from './file-state.ts';
import type { FileEntry, ParseResult } from './file-state.ts';
import { ResourceTable } from './table.ts';
import { TableStore } from './table-store.ts';
import type { TableMutation } from './table.ts';
import type { ConfigStore, RejectedResource, StoreListener } from './types.ts';

/** Options of a FileStore; every one has a default. */
export interface FileStoreOptions {
  /** Quiet time after the last change before a reload (ms). Default 100. */
  readonly debounceMs?: number;
  /** Upper bound on how long a continuous stream of changes can delay a reload (ms). Default 1000. */
  readonly maxDelayMs?: number;
  /** Safety rescan period (ms), catching anything the watcher missed; 0 disables. Default 2000. */
  readonly rescanIntervalMs?: number;
  /** Watch for changes at all. Default true. */
  readonly watch?: boolean;
  /** Whether the watcher keeps the process alive (fs.watch `persistent`). Default true. */
  readonly persistent?: boolean;
  /** The parser; defaults to `parseConfigText` from `config/load.ts`. */
  readonly parse?: (text: string, file: string) => ParseResult;
  /** Unexpected internal errors (already turned into diagnostics); default: process warning. */
  readonly onError?: (err: unknown) => void;
  /** Called when a listener throws; default: process warning. */
  readonly onListenerError?: (err: unknown) => void;
  /** Clock for creationTimestamp. */
  readonly now?: () => number;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function signature(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

interface Tracked {
  sig: string;
  entry: FileEntry;
  /** Seen empty once while holding resources (see the mid-write guard in #reload). */
  emptySeen?: boolean;
}

/** Reasons for a reload: watcher-reported paths (absolute) or "read everything". */
interface Pending {
  all: boolean;
  paths: Set<string>;
  firstAt: number;
}

/**
 * A watched directory (or file) of YAML/JSON config. Prefer `openFileStore`, which resolves once
 * the initial load is done.
 */
export class FileStore extends TableStore implements ConfigStore {
  /** The path as given. */
  readonly path: string;
  readonly #abs: string;
  readonly #opts: Required<Pick<FileStoreOptions, 'debounceMs' | 'maxDelayMs' | 'rescanIntervalMs' | 'watch' | 'persistent'>>;
  readonly #parse: (text: string, file: string) => ParseResult;
  readonly #onError: (err: unknown) => void;
  readonly #files = new Map<string, Tracked>();
  readonly #ready: Promise<void>;
  #mode: 'dir' | 'file' = 'dir';
  #watcher: FSWatcher | undefined;
  #watchedIno: number | undefined;
  /** Watchers of the subdirectories (dir mode), by absolute path. */
  readonly #subWatchers = new Map<string, FSWatcher>();
  #watchRetryAt = 0;
  #debounce: NodeJS.Timeout | undefined;
  #rescan: NodeJS.Timeout | undefined;
  #pending: Pending | undefined;
  #chain: Promise<void> = Promise.resolve();
  #storeDiagnostics: Diagnostic[] = [];
  #fileDiagnostics: readonly Diagnostic[] = [];
  #rejected: ReadonlyMap<string, RejectedResource> = new Map();

  constructor(path: string, options: FileStoreOptions = {}) {
    super(new ResourceTable({ now: options.now, onListenerError: options.onListenerError }));
    this.path = path;
    this.#abs = resolve(path);
    this.#opts = {
      debounceMs: options.debounceMs ?? 100,
      maxDelayMs: options.maxDelayMs ?? 1000,
      rescanIntervalMs: options.rescanIntervalMs ?? 2000,
      watch: options.watch ?? true,
      persistent: options.persistent ?? true,
    };
    this.#parse = options.parse ?? parseConfigText;
    this.#onError = options.onError ?? ((err) => process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'TRELLIS_FILE_STORE' }));
    this.#ready = this.#start();
    // ready() reports the failure; do not also raise an unhandled rejection if nobody asks.
    this.#ready.catch(() => {});
  }

  /** The files currently loaded, in path order (as displayed in diagnostics). */
  files(): string[] {
    return [...this.#files.values()].map((t) => t.entry.file).sort(comparePaths);
  }

  /** Resolves once the initial load is complete; rejects with CONFIG_DIR_NOT_FOUND if the path is missing. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Re-reads everything now (skipping the debounce) and resolves once the result is visible. */
  async flush(): Promise<void> {
    await this.#ready;
    this.#clearDebounce();
    this.#pending = undefined;
    await this.#enqueue({ all: true, paths: new Set(), firstAt: Date.now() });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#clearDebounce();
    if (this.#rescan !== undefined) clearInterval(this.#rescan);
    this.#rescan = undefined;
    this.#closeWatcher();
    this.clearListeners();
    await this.#chain.catch(() => {});
    await this.#ready.catch(() => {});
  }

  async #start(): Promise<void> {
    let st: Stats;
    try {
      st = await stat(this.#abs);
    } catch (err) {
      this.closed = true;
      throw new TrellisError('CONFIG_DIR_NOT_FOUND', `config path ${this.path} not found (${describeError(err)})`, {
        cause: err,
        context: { path: this.path },
      });
    }
    if (!st.isDirectory() && !st.isFile()) {
      this.closed = true;
      throw new TrellisError('CONFIG_DIR_NOT_FOUND', `config path ${this.path} is neither a directory nor a file`, { context: { path: this.path } });
    }
    this.#mode = st.isDirectory() ? 'dir' : 'file';
    // Watch before the first scan so nothing written during the scan is missed.
    this.#ensureWatcher(this.#mode === 'dir' ? st.ino : undefined);
    await this.#enqueue({ all: true, paths: new Set(), firstAt: Date.now() });
    if (this.#opts.watch && this.#opts.rescanIntervalMs > 0 && !this.closed) {
      this.#rescan = setInterval(() => this.#onRescanTick(), this.#opts.rescanIntervalMs);
      this.#rescan.unref();
    }
  }

  // ---- watching ------------------------------------------------------------------------------

  #ensureWatcher(ino?: number): void {
    if (!this.#opts.watch || this.closed) return;
    if (this.#watcher !== undefined && (ino === undefined || ino === this.#watchedIno)) return;
    // After a failure, retry no faster than the rescan period (a full inotify table would
    // otherwise turn into a tight fail/retry loop).
    if (Date.now() < this.#watchRetryAt) return;
    this.#closeWatcher();
    const target = this.#mode === 'dir' ? this.#abs : dirname(this.#abs);
    const name = basename(this.#abs);
    try {
      // A single file is watched through its directory: editors replace files by rename, which
      // would leave a watcher on the old inode deaf.
      const w = fsWatch(target, { persistent: this.#opts.persistent }, (_event, filename) => {
        if (this.#mode === 'file') {
          if (filename === null || filename === name) this.#changed(this.#abs);
          return;
        }
        this.#changed(filename === null || filename === '' ? undefined : join(this.#abs, String(filename)));
      });
      w.on('error', (err) => this.#watchFailed(err));
      this.#watcher = w;
      this.#watchedIno = ino;
      this.#setStoreDiagnostic(StoreDiagnosticCodes.WatchError, undefined);
    } catch (err) {
      this.#watchFailed(err);
    }
  }

  #watchFailed(err: unknown): void {
    this.#closeWatcher();
    if (this.closed) return;
    this.#watchRetryAt = Date.now() + Math.max(1000, this.#opts.rescanIntervalMs);
    this.#setStoreDiagnostic(StoreDiagnosticCodes.WatchError, {
      severity: 'warning',
      code: StoreDiagnosticCodes.WatchError,
      message: `${this.path}: watching failed (${describeError(err)}); changes are picked up by the periodic rescan`,
      file: this.path,
    });
    this.#publishDiagnostics();
    // The next rescan re-establishes the watcher; until then it is the only source of changes.
    this.#changed(undefined);
  }

  /** Watches exactly the subdirectories in `dirs` (the root's own watcher is #ensureWatcher's). */
  #syncSubdirWatchers(dirs: ReadonlySet<string>): void {
    for (const [dir, w] of this.#subWatchers) {
      if (!dirs.has(dir)) {
        this.#subWatchers.delete(dir);
        closeQuietly(w);
      }
    }
    if (!this.#opts.watch || this.closed || this.#watcher === undefined) return;
    let added = false;
    for (const dir of dirs) {
      if (this.#subWatchers.has(dir)) continue;
      added = true;
      try {
        const w = fsWatch(dir, { persistent: this.#opts.persistent }, (_event, filename) => {
          this.#changed(filename === null || filename === '' ? undefined : join(dir, String(filename)));
        });
        // A subdirectory removed or replaced: drop its watcher; the reload this triggers re-lists.
        w.on('error', () => {
          if (this.#subWatchers.get(dir) === w) this.#subWatchers.delete(dir);
          closeQuietly(w);
          this.#changed(undefined);
        });
        this.#subWatchers.set(dir, w);
      } catch (err) {
        this.#watchFailed(err);
        return;
      }
    }
    // A file created in a new directory between its listing and its watcher would go unseen
    // until the rescan: look once more now that the watcher is in place.
    if (added) this.#changed(undefined);
  }

  #closeWatcher(): void {
    const w = this.#watcher;
    this.#watcher = undefined;
    this.#watchedIno = undefined;
    for (const sub of this.#subWatchers.values()) closeQuietly(sub);
    this.#subWatchers.clear();
    if (w !== undefined) closeQuietly(w);
  }

  #onRescanTick(): void {
    if (this.closed || this.#pending !== undefined) return;
    void this.#enqueue({ all: false, paths: new Set(), firstAt: Date.now() });
  }

  /** A watcher event: `path` changed (undefined: something, somewhere). Debounced. */
  #changed(path: string | undefined): void {
    if (this.closed) return;
    const now = Date.now();
    const p = (this.#pending ??= { all: false, paths: new Set(), firstAt: now });
    if (path === undefined) p.all = true;
    else p.paths.add(path);
    this.#clearDebounce();
    const wait = Math.max(0, Math.min(this.#opts.debounceMs, p.firstAt + this.#opts.maxDelayMs - now));
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending !== undefined) void this.#enqueue(pending);
    }, wait);
    this.#debounce.unref();
  }

  #clearDebounce(): void {
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = undefined;
  }

  // ---- loading -------------------------------------------------------------------------------

  /** Reloads run one at a time, in order; errors become diagnostics, never rejections. */
  #enqueue(reason: Pending): Promise<void> {
    const run = this.#chain.then(() => this.#reload(reason));
    this.#chain = run.catch((err: unknown) => {
      if (this.closed) return;
      this.#onError(err);
    });
    return this.#chain;
  }

  async #reload(reason: Pending): Promise<void> {
    if (this.closed) return;
    let rootStat: Stats;
    try {
      rootStat = await stat(this.#abs);
    } catch (err) {
      // The path vanished after start (e.g. a ConfigMap remount or `rm -rf && cp`): keep serving
      // the last loaded config and say so, rather than withdrawing every route at once.
      this.#setStoreDiagnostic(StoreDiagnosticCodes.ConfigDirNotFound, {
        severity: 'error',
        code: StoreDiagnosticCodes.ConfigDirNotFound,
        message: `config path ${this.path} not found (${describeError(err)}); still serving the last loaded configuration`,
        file: this.path,
      });
      this.#closeWatcher();
      this.#publishDiagnostics();
      return;
    }
    this.#setStoreDiagnostic(StoreDiagnosticCodes.ConfigDirNotFound, undefined);
    this.#mode = rootStat.isDirectory() ? 'dir' : 'file';
    // A replaced root (new inode) leaves the old watcher deaf: watch the new one.
    if (this.#mode === 'dir') this.#ensureWatcher(rootStat.ino);
    else this.#ensureWatcher();

    const dirs = new Set<string>();
    const listed = this.#mode === 'dir' ? await listConfigFiles(this.#abs, this.path, dirs) : new Map([[this.#abs, this.path]]);
    if (this.#mode === 'dir') this.#syncSubdirWatchers(dirs);
    let changed = false;
    for (const [abs, display] of listed) {
      if (this.closed) return;
      const before = this.#files.get(abs);
      let st: Stats;
      try {
        st = await stat(abs);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') {
          listed.delete(abs);
          continue;
        }
        changed = this.#setEntry(abs, '', readFailed(before?.entry, display, describeError(err)), before) || changed;
        continue;
      }
      const sig = signature(st);
      if (before !== undefined && before.sig === sig && !reason.all && !reason.paths.has(abs)) continue;
      let text: string;
      try {
        text = await readFile(abs, 'utf8');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') {
          listed.delete(abs);
          continue;
        }
        changed = this.#setEntry(abs, sig, readFailed(before?.entry, display, describeError(err)), before) || changed;
        continue;
      }
      // A writer that truncates then writes in place (no rename) can be caught mid-write. If the
      // file changed while we read it, or went empty while it held resources, look again after
      // the debounce instead of withdrawing its resources on a half-written state (an emptied
      // file still takes effect on the second look).
      const afterRead = await stat(abs).catch(() => undefined);
      const looksTruncated = text.trim() === '' && before !== undefined && before.entry.resources.size > 0 && before.emptySeen !== true;
      if (afterRead === undefined || signature(afterRead) !== sig || looksTruncated) {
        if (looksTruncated) before.emptySeen = true;
        this.#changed(abs);
        continue;
      }
      if (before !== undefined) before.emptySeen = false;
      if (before !== undefined && before.entry.text === text) {
        before.sig = sig;
        continue;
      }
      const entry = applyParse(before?.entry, display, text, this.#parse(text, display));
      changed = this.#setEntry(abs, sig, entry, before) || changed;
    }
    for (const abs of [...this.#files.keys()]) {
      if (!listed.has(abs)) {
        this.#files.delete(abs);
        changed = true;
      }
    }
    if (this.closed) return;
    if (changed) this.#commit();
    else this.#publishDiagnostics();
  }

  #setEntry(abs: string, sig: string, entry: FileEntry, before: Tracked | undefined): boolean {
    if (before === undefined) this.#files.set(abs, { sig, entry });
    else {
      before.sig = sig;
      before.entry = entry;
    }
    return true;
  }

  #commit(): void {
    const entries = [...this.#files.values()].map((t) => t.entry).sort((a, b) => comparePaths(a.file, b.file));
    const merged = mergeFiles(entries);
    this.#fileDiagnostics = merged.diagnostics;
    this.#rejected = merged.rejected;
    this.commitReported(
      merged.resources.map((resource): TableMutation => ({ op: 'put', resource })),
      true,
      this.#allDiagnostics(),
      merged.rejected,
    );
  }

  // ---- diagnostics ---------------------------------------------------------------------------

  #setStoreDiagnostic(code: string, diagnostic: Diagnostic | undefined): void {
    this.#storeDiagnostics = this.#storeDiagnostics.filter((d) => d.code !== code);
    if (diagnostic !== undefined) this.#storeDiagnostics.push(diagnostic);
  }

  #allDiagnostics(): Diagnostic[] {
    return [...this.#storeDiagnostics, ...this.#fileDiagnostics];
  }

  #publishDiagnostics(): void {
    this.report(this.#allDiagnostics(), this.#rejected);
  }
}

/**
 * Opens a FileStore on a directory tree or a single file and resolves once the initial load is
 * complete. Rejects with TrellisError `CONFIG_DIR_NOT_FOUND` when the path does not exist.
 * @example
 * const store = await openFileStore('examples/bookinfo');
 * store.watch((events, revision) => rebuild(revision));
 */
export async function openFileStore(path: string, options?: FileStoreOptions): Promise<FileStore> {
  const store = new FileStore(path, options);
  try {
    await store.ready();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** Closing a watcher whose directory vanished may throw; it is released either way. */
function closeQuietly(w: FSWatcher): void {
  try {
    w.close();
  } catch {
    // released regardless
  }
}
