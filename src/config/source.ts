/**
 * Maps field paths to source lines. At load time we hold the parsed YAML document and find a
 * field's node directly; afterwards a Resource keeps only the file text and the document's
 * offsets, and re-parses that one document the first time someone asks `lineOf` (diagnostics
 * are rare; 10,000 retained syntax trees would not be). JSON input goes through the same YAML
 * parser (JSON is YAML), so lines work for both.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { SourceInfo } from './resource.ts';
import { splitPath } from './schema/path.ts';

/**
 * The node to point at for a field path: the key of the last map entry found (so
 * `spec.trafficPolicy` points at the `trafficPolicy:` line, not at its first child), or the
 * list item; for a path that does not exist, the deepest entry found on the way, so a missing
 * field points at its parent.
 */
export function nodeAt(root: Node | null | undefined, segs: (string | number)[]): Node | undefined {
  let node: Node | undefined = root ?? undefined;
  let anchor: Node | undefined = node;
  for (const seg of segs) {
    if (!node) break;
    let next: Node | undefined;
    let nextAnchor: Node | undefined;
    if (isMap(node) && typeof seg === 'string') {
      for (const item of node.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === seg) {
          nextAnchor = item.key as Node;
          next = (item.value as Node | null) ?? nextAnchor;
          break;
        }
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg] as Node | undefined;
      nextAnchor = next;
    }
    if (!next) break;
    node = next;
    anchor = nextAnchor;
  }
  return anchor;
}

/** 1-based line of `fieldPath` inside `doc`, using `lc` for offsets; undefined if unknown. */
export function lineInDoc(doc: Document.Parsed, lc: LineCounter, fieldPath: string, lineBase = 0): number | undefined {
  const segs = splitPath(fieldPath);
  if (!segs) return undefined;
  const node = nodeAt(doc.contents as Node | null, segs);
  const off = node?.range?.[0];
  return off === undefined ? undefined : lc.linePos(off).line + lineBase;
}

/** SourceInfo whose lineOf (paths below `prefix`, e.g. `items[2]` for a List member) re-parses `text.slice(start, end)` lazily; `line` is the document's first line. */
export function lazySource(file: string, line: number, text: string, start: number, end: number, startLine: number, prefix = ''): SourceInfo {
  let cached: { doc: Document.Parsed; lc: LineCounter } | undefined;
  return {
    file,
    line,
    lineOf(fieldPath: string): number | undefined {
      if (!cached) {
        const lc = new LineCounter();
        const doc = parseDocument(text.slice(start, end), { lineCounter: lc, keepSourceTokens: false });
        cached = { doc, lc };
      }
      // startLine is the line of offset `start`; slice lines are 1-based from there.
      return lineInDoc(cached.doc, cached.lc, prefix === '' ? fieldPath : fieldPath === '' ? prefix : `${prefix}.${fieldPath}`, startLine - 1);
    },
  };
}
