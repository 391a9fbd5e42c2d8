/**
 * The pure half of the file store: what each file contributes, with last-known-good semantics,
 * and how the files merge into one resource set. No I/O, no clock — the watcher side
 * (`file.ts`) reads files and hands their parse results here.
 *
 * Last-known-good, per resource: when a document that used to define a resource no longer
 * validates, the previous valid version stays in force and a LAST_KNOWN_GOOD warning says so
 * (next to the parser's error saying why). When a document cannot even be identified (YAML
 * syntax error, no kind/name), every resource the file held that it does not define validly any
 * more stays in force — we cannot tell which one the broken document was.
 */
import { resourceKey } from '../resource.ts';
import type { Diagnostic, Resource } from '../resource.ts';

/**
 * A document the parser could not turn into a resource, with whatever identity it could read.
 * Structurally the `RejectedDocument` of `config/load.ts` (kept here so this pure module does not
 * depend on the loader).
 */
export interface RejectedDocument {
  readonly type?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly file: string;
  readonly line: number;
}

/** The result of parsing one file: structurally the `ParseResult` of `config/load.ts`. */
export interface ParseResult {
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
  readonly rejected: readonly RejectedDocument[];
}

/** What one file contributes to the store. */
export interface FileEntry {
  /** The file as displayed in diagnostics (relative paths stay relative). */
  readonly file: string;
  /** The text last read (undefined when it could not be read). */
  readonly text: string | undefined;
  /** Resources in force from this file (valid ones, then held-over last-known-good ones). */
  readonly resources: ReadonlyMap<string, Resource>;
  /** Diagnostics of the current content, plus LAST_KNOWN_GOOD notes. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Stable diagnostic codes raised by the stores. */
export const StoreDiagnosticCodes = {
  /** The same type/namespace/name is defined twice; the first by path order (then document order) wins. */
  DuplicateResource: 'DUPLICATE_RESOURCE',
  /** The current definition is invalid; the previous valid version is still served. */
  LastKnownGood: 'LAST_KNOWN_GOOD',
  /** A file could not be read; what it held before stays in force. */
  FileReadError: 'FILE_READ_ERROR',
  /** The configured path does not exist (any more); the last loaded config stays in force. */
  ConfigDirNotFound: 'CONFIG_DIR_NOT_FOUND',
  /** The file watcher failed; changes are picked up by the periodic rescan only. */
  WatchError: 'WATCH_ERROR',
} as const;

function describe(r: Resource): string {
  return `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
}

function ref(r: Resource): Diagnostic['resource'] {
  return { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

function where(r: Resource, fallbackFile: string): string {
  const file = r.source?.file ?? fallbackFile;
  return r.source?.line !== undefined ? `${file}:${r.source.line}` : file;
}

function matches(r: Resource, doc: RejectedDocument): boolean {
  return r.type === doc.type && r.metadata.name === doc.name && (doc.namespace === undefined || r.metadata.namespace === doc.namespace);
}

/**
 * The new contribution of `file` after reading `result` from it, given what it contributed
 * before (`prev`). Pure.
 */
export function applyParse(prev: FileEntry | undefined, file: string, text: string, result: ParseResult): FileEntry {
  const resources = new Map<string, Resource>();
  const diagnostics: Diagnostic[] = [...result.diagnostics];
  for (const r of result.resources) {
    const key = resourceKey(r);
    const first = resources.get(key);
    if (first !== undefined) {
      diagnostics.push({
        severity: 'warning',
        code: StoreDiagnosticCodes.DuplicateResource,
        message: `${describe(r)} is defined twice in ${file} (${where(first, file)} and ${where(r, file)}); using ${where(first, file)}`,
        resource: ref(r),
        file,
        line: r.source?.line,
      });
      continue;
    }
    resources.set(key, r);
  }

  const before = prev?.resources;
  if (before !== undefined && before.size > 0 && result.rejected.length > 0) {
    const unidentified = result.rejected.find((d) => d.type === undefined || d.name === undefined);
    for (const [key, old] of before) {
      if (resources.has(key)) continue;
      const doc = unidentified ?? result.rejected.find((d) => matches(old, d));
      if (doc === undefined) continue;
      resources.set(key, old);
      diagnostics.push({
        severity: 'warning',
        code: StoreDiagnosticCodes.LastKnownGood,
        message:
          unidentified !== undefined
            ? `${describe(old)}: the document at ${doc.file}:${doc.line} cannot be parsed; still serving the last valid version`
            : `${describe(old)}: the definition at ${doc.file}:${doc.line} is invalid; still serving its last valid version`,
        resource: ref(old),
        file: doc.file,
        line: doc.line,
      });
    }
  }
  return { file, text, resources, diagnostics };
}

/** The contribution of a file that could not be read: what it held before, plus the error. */
export function readFailed(prev: FileEntry | undefined, file: string, reason: string): FileEntry {
  const held = prev?.resources ?? new Map<string, Resource>();
  const diagnostics: Diagnostic[] = [
    {
      severity: 'error',
      code: StoreDiagnosticCodes.FileReadError,
      message:
        held.size > 0
          ? `${file}: cannot be read (${reason}); still serving the ${held.size} resource(s) it held before`
          : `${file}: cannot be read (${reason})`,
      file,
    },
  ];
  return { file, text: undefined, resources: held, diagnostics };
}

/**
 * Merges file contributions, given in path order, into one resource set. The first definition
 * of a key wins; every later one yields a DUPLICATE_RESOURCE warning naming both places.
 */
export function mergeFiles(entries: Iterable<FileEntry>): { resources: Resource[]; diagnostics: Diagnostic[] } {
  const winners = new Map<string, { resource: Resource; file: string }>();
  const diagnostics: Diagnostic[] = [];
  const duplicates: Diagnostic[] = [];
  for (const entry of entries) {
    diagnostics.push(...entry.diagnostics);
    for (const [key, r] of entry.resources) {
      const first = winners.get(key);
      if (first === undefined) {
        winners.set(key, { resource: r, file: entry.file });
        continue;
      }
      duplicates.push({
        severity: 'warning',
        code: StoreDiagnosticCodes.DuplicateResource,
        message: `${describe(r)} is defined in both ${where(first.resource, first.file)} and ${where(r, entry.file)}; using ${first.file} (first by path order)`,
        resource: ref(r),
        file: entry.file,
        line: r.source?.line,
      });
    }
  }
  return { resources: [...winners.values()].map((w) => w.resource), diagnostics: [...diagnostics, ...duplicates] };
}

/** Path order used everywhere the file store needs determinism (code-point order, not locale). */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
