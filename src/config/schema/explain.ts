/**
 * Field documentation read off a schema, for `trellis explain KIND[.FIELD]` (text, like
 * `kubectl explain`) and for the generated reference pages (Markdown). Both print the same
 * facts from the same schema the loader validates with: type, required, default, allowed values,
 * bounds and the description, so documentation cannot drift from what is accepted.
 */
import type { SchemaNode } from './types.ts';

/** The facts about one field. */
export interface FieldDoc {
  /** Dotted path below the explained node (`ports.protocol`). */
  readonly path: string;
  readonly name: string;
  /** `string`, `integer`, `[]Object`, `map[string]string`, `Object`, ... */
  readonly type: string;
  readonly required: boolean;
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  /** Bounds and patterns, as one short phrase (`0..1000`, `pattern ^/`). */
  readonly constraints?: string;
  readonly description?: string;
  /** Nesting depth below the explained node (0 = direct field). */
  readonly depth: number;
}

/** The node's own type word. */
export function typeName(n: SchemaNode): string {
  if (n['x-kubernetes-int-or-string'] === true) return 'int-or-string';
  if (n.type === 'array') return `[]${n.items === undefined ? 'Object' : elementName(n.items)}`;
  if (n.type === 'object' || n.properties !== undefined) {
    if (n.properties === undefined && typeof n.additionalProperties === 'object') return `map[string]${elementName(n.additionalProperties)}`;
    return 'Object';
  }
  return n.type ?? 'Object';
}

function elementName(n: SchemaNode): string {
  return n.type === 'object' || n.properties !== undefined ? 'Object' : typeName(n);
}

function constraints(n: SchemaNode): string | undefined {
  const parts: string[] = [];
  if (n.minimum !== undefined || n.maximum !== undefined) parts.push(`${n.minimum ?? ''}..${n.maximum ?? ''}`);
  if (n.minLength !== undefined) parts.push(`at least ${n.minLength} character${n.minLength === 1 ? '' : 's'}`);
  if (n.minItems !== undefined) parts.push(`at least ${n.minItems} item${n.minItems === 1 ? '' : 's'}`);
  if (n.pattern !== undefined) parts.push(`matches ${n.pattern}`);
  if (n['x-trellis-check'] === 'port') parts.push('1..65535');
  return parts.length === 0 ? undefined : parts.join(', ');
}

/** The object whose fields a node has: itself, or its array items. */
function fieldsNode(n: SchemaNode): SchemaNode | undefined {
  if (n.properties !== undefined) return n;
  if (n.type === 'array' && n.items?.properties !== undefined) return n.items;
  return undefined;
}

/** The fields of `node` (recursively when asked), in declaration order. */
export function fieldDocs(node: SchemaNode, recursive: boolean, prefix = '', depth = 0): FieldDoc[] {
  const holder = fieldsNode(node);
  if (holder === undefined) return [];
  const out: FieldDoc[] = [];
  for (const [name, child] of Object.entries(holder.properties ?? {})) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    out.push({
      path, name, type: typeName(child), required: holder.required?.includes(name) ?? false, depth,
      ...(child.default !== undefined ? { default: child.default } : {}),
      ...(child.enum !== undefined ? { enum: child.enum } : {}),
      ...(constraints(child) !== undefined ? { constraints: constraints(child) } : {}),
      ...(child.description !== undefined ? { description: child.description } : {}),
    });
    if (recursive) out.push(...fieldDocs(child, true, path, depth + 1));
  }
  return out;
}

/** The node at `path` (field names, arrays stepped through) below `root`, or undefined. */
export function nodeAt(root: SchemaNode, path: readonly string[]): SchemaNode | undefined {
  let n: SchemaNode | undefined = root;
  for (const name of path) {
    const holder: SchemaNode | undefined = n === undefined ? undefined : fieldsNode(n);
    n = holder?.properties?.[name];
    if (n === undefined) return undefined;
  }
  return n;
}

/** One-line facts after the type: `-required-`, default, allowed values, bounds. */
export function factsOf(f: Pick<FieldDoc, 'required' | 'default' | 'enum' | 'constraints'>): string[] {
  const facts: string[] = [];
  if (f.required) facts.push('required');
  if (f.default !== undefined && !(typeof f.default === 'object' && Object.keys(f.default as object).length === 0)) facts.push(`default ${JSON.stringify(f.default)}`);
  if (f.enum !== undefined) facts.push(`one of ${f.enum.map(String).join(', ')}`);
  if (f.constraints !== undefined) facts.push(f.constraints);
  return facts;
}
