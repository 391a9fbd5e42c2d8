/**
 * Loading configuration from text, files and directories: multi-document YAML or JSON (JSON is
 * parsed by the same YAML parser so lines work; `.json` files are also checked strictly with
 * JSON.parse), `kind: List` and top-level arrays expanded, each document validated on its own
 * by document.ts. Duplicate resources (same type/namespace/name) within one load are reported
 * and the later copy is dropped. This is the edge where untrusted config becomes frozen,
 * typed Resources; nothing here throws on bad input.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { ignoreMatcher } from './ignore-file.ts';
import { join } from 'node:path';
import { LineCounter, isMap, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node } from 'yaml';
import type { Diagnostic, Resource } from './resource.ts';
import { resourceKey } from './resource.ts';
import { classify, diag, processDocument } from './document.ts';
import type { DocLocation, RejectedDocument } from './document.ts';
import { lazySource, lineInDoc } from './source.ts';
import { notText, tidyDiagnostics } from './diagnostic-text.ts';

export type { RejectedDocument } from './document.ts';

/** Resources that loaded, every diagnostic, and the documents that did not load. */
export interface ParseResult { resources: Resource[]; diagnostics: Diagnostic[]; rejected: RejectedDocument[] }

const MAX_ALIASES = 100;

function location(file: string, text: string, doc: Document.Parsed, lc: LineCounter, prefix: string, node: Node | null | undefined): DocLocation {
  const start = doc.range[0];
  const end = doc.range[2] ?? doc.range[1];
  const startLine = lc.linePos(start).line;
  const firstOff = node?.range?.[0] ?? doc.contents?.range?.[0] ?? start;
  const line = lc.linePos(firstOff).line;
  const full = (p: string): string => (prefix === '' ? p : p === '' ? prefix : `${prefix}.${p}`);
  return {
    file,
    line,
    lineOf: (p) => lineInDoc(doc, lc, full(p)),
    source: Object.freeze(lazySource(file, line, text, start, end, startLine, prefix)),
  };
}

function isListDoc(v: unknown): v is { items: unknown[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    && (v as Record<string, unknown>).kind === 'List' && Array.isArray((v as Record<string, unknown>).items);
}

function looksLikeResourceArray(v: unknown): v is unknown[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x) && 'kind' in x);
}

/** JSON syntax check for `.json` files: a diagnostic with the line of the error, or undefined. */
function jsonSyntax(text: string, file: string): Diagnostic | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    const msg = (err as Error).message;
    const m = /position (\d+)/.exec(msg);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : (/line (\d+)/.exec(msg)?.[1] ?? '1');
    return { severity: 'error', code: 'JSON_SYNTAX', message: `invalid JSON: ${msg}`, file, line: Number(line) };
  }
}

/** Parses multi-document YAML or JSON text; never throws on bad input. */
export function parseConfigText(text: string, file: string): ParseResult {
  const out = parseText(text, file);
  out.diagnostics = tidyDiagnostics(out.diagnostics);
  return out;
}

function parseText(text: string, file: string): ParseResult {
  const out: ParseResult = { resources: [], diagnostics: [], rejected: [] };
  const binary = notText(text);
  if (binary !== undefined) {
    out.diagnostics.push({ severity: 'error', code: 'NOT_TEXT', message: `not a YAML or JSON text file (${Buffer.byteLength(text)} bytes): ${binary}`, file, line: 1 });
    out.rejected.push({ file, line: 1 });
    return out;
  }
  if (file.endsWith('.json')) {
    const d = jsonSyntax(text, file);
    if (d) {
      out.diagnostics.push(d);
      out.rejected.push({ file, line: d.line ?? 1 });
      return out;
    }
  }
  const lc = new LineCounter();
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false }) as Document.Parsed[];
    if (!Array.isArray(docs)) docs = [];
  } catch (err) {
    const deep = err instanceof RangeError;
    out.diagnostics.push({ severity: 'error', code: deep ? 'DOC_TOO_DEEP' : 'YAML_SYNTAX', message: deep ? 'input nests too deeply to parse' : `cannot parse: ${(err as Error).message}`, file, line: 1 });
    out.rejected.push({ file, line: 1 });
    return out;
  }
  for (const doc of docs) handleDoc(doc, text, file, lc, out);
  dedupe(out);
  return out;
}

function handleDoc(doc: Document.Parsed, text: string, file: string, lc: LineCounter, out: ParseResult): void {
  const baseLoc = location(file, text, doc, lc, '', doc.contents);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0]?.line ?? (e.pos?.[0] !== undefined ? lc.linePos(e.pos[0]).line : baseLoc.line);
      const code = e.code === 'DUPLICATE_KEY' ? 'DUPLICATE_KEY' : /call stack/i.test(e.message) ? 'DOC_TOO_DEEP' : 'YAML_SYNTAX';
      out.diagnostics.push({ severity: 'error', code, message: e.message.split('\n')[0], file, line });
    }
    out.rejected.push({ file, line: baseLoc.line, ...peekIdentity(doc) });
    return;
  }
  if (doc.contents === null) return; // empty document (comments only, trailing ---)
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const deep = err instanceof RangeError;
    out.diagnostics.push(diag(baseLoc, 'error', deep ? 'DOC_TOO_DEEP' : 'YAML_SYNTAX', deep ? 'document nests too deeply to read' : (err as Error).message));
    out.rejected.push({ file, line: baseLoc.line, ...peekIdentity(doc) });
    return;
  }
  if (isListDoc(value) || looksLikeResourceArray(value)) {
    const items = Array.isArray(value) ? value : value.items;
    const seqNode = Array.isArray(value) ? doc.contents : (isMap(doc.contents) ? doc.contents.get('items', true) : undefined);
    const prefix = Array.isArray(value) ? '' : 'items';
    items.forEach((item, i) => {
      const itemNode = isSeq(seqNode) ? (seqNode.items[i] as Node | undefined) : undefined;
      const p = `${prefix}[${i}]`;
      add(processDocument(item, location(file, text, doc, lc, p, itemNode)), out);
    });
    return;
  }
  add(processDocument(value, baseLoc), out);
}

function add(r: ReturnType<typeof processDocument>, out: ParseResult): void {
  out.diagnostics.push(...r.diagnostics);
  if (r.resource) out.resources.push(r.resource);
  if (r.rejected) out.rejected.push(r.rejected);
}

/** Identity of a document that failed to parse, read from its syntax tree as far as possible. */
function peekIdentity(doc: Document.Parsed): Partial<RejectedDocument> {
  try {
    if (!isMap(doc.contents)) return {};
    const apiVersion = doc.contents.get('apiVersion');
    const kind = doc.contents.get('kind');
    const md = doc.contents.get('metadata', true);
    const name = isMap(md) ? md.get('name') : undefined;
    const namespace = isMap(md) ? md.get('namespace') : undefined;
    const c = typeof apiVersion === 'string' && typeof kind === 'string' ? classify(apiVersion, kind) : undefined;
    return {
      ...(c?.tag === 'managed' ? { type: c.info.type } : {}),
      ...(typeof name === 'string' ? { name, namespace: typeof namespace === 'string' ? namespace : 'default' } : {}),
    };
  } catch {
    return {};
  }
}

/** Drops later copies of a resource already seen in this result, with a DUPLICATE_RESOURCE error. */
function dedupe(out: ParseResult): void {
  const seen = new Map<string, Resource>();
  const kept: Resource[] = [];
  for (const r of out.resources) {
    const key = resourceKey(r);
    const first = seen.get(key);
    if (!first) {
      seen.set(key, r);
      kept.push(r);
      continue;
    }
    const where = first.source ? `${first.source.file}:${first.source.line}` : 'earlier';
    out.diagnostics.push({
      severity: 'error', code: 'DUPLICATE_RESOURCE',
      message: `${r.kind} ${r.metadata.namespace ? r.metadata.namespace + '/' : ''}${r.metadata.name} is defined twice (first at ${where}); this copy is ignored`,
      resource: { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
      file: r.source?.file, line: r.source?.line,
    });
    out.rejected.push({ type: r.type, namespace: r.metadata.namespace, name: r.metadata.name, file: r.source?.file ?? '', line: r.source?.line ?? 0 });
  }
  out.resources = kept;
}

const CONFIG_EXT = /\.(ya?ml|json)$/i;

async function collectFiles(path: string, out: string[], diags: Diagnostic[]): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    diags.push({ severity: 'error', code: 'READ_ERROR', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, file: path });
    return;
  }
  if (st.isDirectory()) {
    const entries = await readdir(path, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const ignored = ignoreMatcher(path);
    for (const e of entries) {
      if (e.name.startsWith('.') || ignored(e.name, e.isDirectory())) continue;
      const p = join(path, e.name);
      if (e.isDirectory()) await collectFiles(p, out, diags);
      else if (CONFIG_EXT.test(e.name)) out.push(p);
    }
  } else {
    out.push(path);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Loads files and directories (recursively: .yaml, .yml, .json, sorted by name); `-` reads stdin. */
export async function loadConfigPaths(paths: string[]): Promise<ParseResult> {
  const all: ParseResult = { resources: [], diagnostics: [], rejected: [] };
  const files: string[] = [];
  for (const p of paths) {
    if (p === '-') files.push('-');
    else await collectFiles(p, files, all.diagnostics);
  }
  for (const f of files) {
    let text: string;
    try {
      text = f === '-' ? await readStdin() : await readFile(f, 'utf8');
    } catch (err) {
      all.diagnostics.push({ severity: 'error', code: 'READ_ERROR', message: `cannot read ${f}: ${(err as Error).message}`, file: f });
      continue;
    }
    const r = parseConfigText(text, f);
    all.resources.push(...r.resources);
    all.diagnostics.push(...r.diagnostics);
    all.rejected.push(...r.rejected);
  }
  dedupe(all);
  return all;
}

