/**
 * `trellis explain KIND[.FIELD]...`: the fields of a resource kind, read off the schema the loader
 * validates it with (src/config/schema/explain.ts), printed like `kubectl explain`.
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { explain as spec } from './commands-inspect.ts';
import { parseCommand, wrap } from './spec.ts';
import { kindCatalog, type KindInfo } from '../config/schema/catalog.ts';
import { factsOf, fieldDocs, nodeAt, typeName } from '../config/schema/explain.ts';
import { OBJECT_META, WORKLOAD_DESCRIPTION } from '../config/schema/local.ts';
import { ResourceTypes } from '../config/resource.ts';
import type { SchemaNode } from '../config/schema/types.ts';

/** Descriptions of the kinds Trellis defines (the upstream schemas carry none). */
const KIND_DESCRIPTIONS: Readonly<Record<string, string>> = { [ResourceTypes.Workload]: WORKLOAD_DESCRIPTION };

/** The whole document of a kind as one schema node: apiVersion, kind, metadata, spec or body fields. */
export function documentSchema(k: KindInfo): SchemaNode {
  const properties: Record<string, SchemaNode> = {
    apiVersion: { type: 'string', description: `${k.group === 'core' ? '' : `${k.group}/`}${k.versions[0]}${k.versions.length > 1 ? ` (also accepted: ${k.versions.slice(1).join(', ')})` : ''}` },
    kind: { type: 'string', description: k.kind },
    metadata: { ...OBJECT_META, description: `name${k.clusterScoped ? '' : ', namespace (default: default)'}, labels, annotations, as in Kubernetes` },
  };
  if (k.spec !== undefined) properties.spec = k.spec;
  for (const [name, node] of Object.entries(k.body?.properties ?? {})) properties[name] = node;
  return { type: 'object', description: KIND_DESCRIPTIONS[k.type], required: ['apiVersion', 'kind', 'metadata', ...(k.specRequired ? ['spec'] : [])], properties };
}

/** The kinds a name (any case, singular or plural) can mean. */
export function kindsNamed(name: string, apiVersion?: string): KindInfo[] {
  const want = name.toLowerCase().replace(/s$/, '');
  return [...kindCatalog().values()].filter((k) => {
    if (k.kind.toLowerCase() !== want && k.kind.toLowerCase() !== name.toLowerCase()) return false;
    if (apiVersion === undefined) return true;
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
    return k.group === group && (version === undefined || k.versions.includes(version));
  });
}

function apiVersionOf(k: KindInfo): string {
  return `${k.group === 'core' ? '' : `${k.group}/`}${k.versions[0]}`;
}

/** The explain text for `path` (field names) of kind `k`. */
export function explainText(k: KindInfo, path: readonly string[], recursive: boolean): string {
  const root = documentSchema(k);
  const node = path.length === 0 ? root : nodeAt(root, path);
  if (node === undefined) throw new UsageError(`explain: ${k.kind} has no field '${path.join('.')}' (see trellis explain ${k.kind.toLowerCase()}${path.length > 1 ? `.${path.slice(0, -1).join('.')}` : ''})`);
  const out = [`KIND:     ${k.kind}`, `VERSION:  ${apiVersionOf(k)}`, ''];
  if (path.length > 0) {
    const parent = nodeAt(root, path.slice(0, -1)) ?? root;
    const holder = parent.properties !== undefined ? parent : parent.items ?? parent;
    const facts = factsOf({ required: holder.required?.includes(path[path.length - 1]) ?? false, default: node.default, enum: node.enum });
    out.push(`FIELD:    ${path.join('.')} <${typeName(node)}>${facts.length > 0 ? `  (${facts.join('; ')})` : ''}`, '');
  }
  out.push('DESCRIPTION:', `    ${wrap(node.description ?? '(no description; see the upstream API reference)', 96, '    ')}`, '');
  const fields = fieldDocs(node, recursive);
  if (fields.length > 0) {
    out.push('FIELDS:');
    for (const f of fields) {
      const ind = '  '.repeat(f.depth + 1);
      const facts = factsOf(f);
      out.push(`${ind}${f.name}\t<${f.type}>${facts.length > 0 ? `  (${facts.join('; ')})` : ''}`);
      if (f.description !== undefined && !recursive) out.push(`${ind}  ${wrap(f.description, 96 - ind.length, `${ind}  `)}`, '');
    }
  }
  return out.join('\n').trimEnd() + '\n';
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(spec, args);
    if (positionals.length > 1) throw new UsageError(`explain: one KIND[.FIELD] at a time, got ${positionals.length}`);
    if (positionals.length === 0) {
      const lines = ['Kinds Trellis reads (trellis explain KIND):', ''];
      for (const k of kindCatalog().values()) lines.push(`  ${k.kind.padEnd(24)} ${apiVersionOf(k)}`);
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    }
    const [kindName, ...path] = positionals[0].split('.');
    const kinds = kindsNamed(kindName, values['api-version']);
    if (kinds.length === 0) throw new UsageError(`explain: unknown kind '${kindName}'${values['api-version'] ? ` in ${values['api-version']}` : ''} (trellis explain lists them)`);
    if (kinds.length > 1) throw new UsageError(`explain: '${kindName}' is ${kinds.map(apiVersionOf).join(' and ')}; choose with --api-version`);
    process.stdout.write(explainText(kinds[0], path, values.recursive === true));
    return 0;
  },
};
