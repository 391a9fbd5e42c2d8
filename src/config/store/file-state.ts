/**
 * The pure half of the file store: what each file contributes and how the files merge into one
 * resource set. No I/O, no clock — the watcher side (`file.ts`) reads files and hands their parse
 * results here.
 *
 * A file contributes its valid resources, and names as *rejected* the resources it used to define
 * whose definition no longer validates (next to the parser's error saying why). When a document
 * cannot even be identified (YAML syntax error, no kind/name), every resource the file held that
 * it does not define validly any more is rejected — we cannot tell which one the broken document
 * was. The store keeps no old versions: the control plane's config gate serves the last good one
 * (the one last-known-good, src/control/config-gate.ts).
 */
import { resourceKey } from '../resource.ts';
import type { Diagnostic, Resource } from '../resource.ts';
import type { RejectedResource } from './types.ts';

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
  /** The valid resources the file defines now. */
  readonly resources: ReadonlyMap<string, Resource>;
  /** Resources the file defined before whose definition it cannot give validly now. */
  readonly rejected: ReadonlyMap<string, RejectedResource>;
  /** Diagnostics of the current content. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Stable diagnostic codes raised by the stores. */
export const StoreDiagnosticCodes = {
  /** The same type/namespace/name is defined twice; the first by path order (then document order) wins. */
  DuplicateResource: 'DUPLICATE_RESOURCE',
  /** A file could not be read; what it held before stays in force (as rejected resources, see the gate). */
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

function matches(r: Identity, doc: RejectedDocument): boolean {
  return r.type === doc.type && r.name === doc.name && (doc.namespace === undefined || r.namespace === doc.namespace);
}

type Identity = Pick<RejectedResource, 'type' | 'kind' | 'namespace' | 'name'>;

/** Everything `entry` named: its valid resources and the ones it already rejected. */
function heldBy(entry: FileEntry | undefined): Map<string, Identity> {
  const out = new Map<string, Identity>();
  if (entry === undefined) return out;
  for (const [key, r] of entry.resources) out.set(key, { type: r.type, kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
  for (const [key, r] of entry.rejected) if (!out.has(key)) out.set(key, { type: r.type, kind: r.kind, namespace: r.namespace, name: r.name });
  return out;
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

  const rejected = new Map<string, RejectedResource>();
  const before = heldBy(prev);
  if (before.size > 0 && result.rejected.length > 0) {
    const unidentified = result.rejected.find((d) => d.type === undefined || d.name === undefined);
    for (const [key, old] of before) {
      if (resources.has(key)) continue;
      const doc = unidentified ?? result.rejected.find((d) => matches(old, d));
      if (doc === undefined) continue;
      const reason = unidentified !== undefined ? `the document at ${doc.file}:${doc.line} cannot be parsed` : `the definition at ${doc.file}:${doc.line} is invalid`;
      rejected.set(key, { ...old, reason, file: doc.file, line: doc.line });
    }
  }
  return { file, text, resources, rejected, diagnostics };
}

/** The contribution of a file that could not be read: everything it held before is rejected, with the error. */
export function readFailed(prev: FileEntry | undefined, file: string, reason: string): FileEntry {
  const held = heldBy(prev);
  const rejected = new Map<string, RejectedResource>();
  for (const [key, id] of held) rejected.set(key, { ...id, reason: `${file} cannot be read (${reason})`, file });
  const diagnostics: Diagnostic[] = [
    {
      severity: 'error',
      code: StoreDiagnosticCodes.FileReadError,
      message:
        held.size > 0
          ? `${file}: cannot be read (${reason}); the ${held.size} resource(s) it held keep their last valid version`
          : `${file}: cannot be read (${reason})`,
      file,
    },
  ];
  return { file, text: undefined, resources: new Map(), rejected, diagnostics };
}

/**
 * Merges file contributions, given in path order, into one resource set. The first definition
 * of a key wins; every later one yields a DUPLICATE_RESOURCE warning naming both places. A key
 * some file rejects is rejected unless another file defines it validly.
 */
export function mergeFiles(entries: Iterable<FileEntry>): { resources: Resource[]; rejected: Map<string, RejectedResource>; diagnostics: Diagnostic[] } {
  const winners = new Map<string, { resource: Resource; file: string }>();
  const diagnostics: Diagnostic[] = [];
  const duplicates: Diagnostic[] = [];
  const rejected = new Map<string, RejectedResource>();
  for (const entry of entries) {
    diagnostics.push(...entry.diagnostics);
    for (const [key, r] of entry.rejected) if (!rejected.has(key)) rejected.set(key, r);
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
  for (const key of winners.keys()) rejected.delete(key);
  return { resources: [...winners.values()].map((w) => w.resource), rejected, diagnostics: [...diagnostics, ...duplicates] };
}

/** Path order used everywhere the file store needs determinism (code-point order, not locale). */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
