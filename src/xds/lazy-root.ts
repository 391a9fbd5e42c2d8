/**
 * A protobufjs Root that builds a message or enum type the first time something looks it up, from
 * an index of each top-level type's protobufjs JSON (see `indexTypes`). A proxy decodes a small
 * part of the ~760 Envoy types the shared root knows, and protobufjs's reflection objects for all
 * of them cost ~5 MB of heap in every process (2026-12-07 measurement; stripping their options
 * saved nothing): here a process pays for the types it touches and their direct field types.
 *
 * Laziness rests on one fact of protobufjs: a field resolves its type through
 * `parent.lookupTypeOrEnum(name)`, and an absolute name (leading dot) goes to `root.lookup`. So the
 * index stores every field's type as the absolute name it resolved to in the fully parsed root, and
 * `lookup` below builds the named type before protobufjs searches for it. Absolute names also keep
 * resolution exact: a relative name could resolve differently in a root that holds only some types.
 * Granularity is a top-level type with everything nested in it, so a type is complete once added
 * and never gains members later (adding to a Type drops its generated codec). Extension
 * declarations (the validate / udpa option annotations, which extend descriptor options) are not
 * indexed: nothing encodes or decodes descriptor options.
 */
import protobuf from 'protobufjs';

/** Top-level message and enum types by full name (no leading dot), as protobufjs JSON text. */
export type TypeIndex = Readonly<Record<string, string>>;

/** Indexes every top-level message and enum type of a root whose fields are resolved. */
export function indexTypes(root: protobuf.Root): Record<string, string> {
  const index: Record<string, string> = {};
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum) {
        const json = obj.toJSON() as protobuf.IType | protobuf.IEnum;
        if (obj instanceof protobuf.Type) absoluteFieldTypes(obj, json as protobuf.IType);
        index[obj.fullName.slice(1)] = JSON.stringify(json);
      } else if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Service)) {
        walk(obj);
      }
    }
  };
  walk(root);
  return index;
}

/** Rewrites the field types of `json` (the JSON of `type`) to the absolute names they resolved to. */
function absoluteFieldTypes(type: protobuf.Type, json: protobuf.IType): void {
  for (const f of type.fieldsArray) {
    if (f.declaringField !== null && f.declaringField !== undefined) continue;
    f.resolve();
    if (f.resolvedType !== null) json.fields[f.name].type = f.resolvedType.fullName;
  }
  for (const nested of type.nestedArray) {
    if (nested instanceof protobuf.Type) absoluteFieldTypes(nested, (json as protobuf.INamespace).nested?.[nested.name] as protobuf.IType);
  }
}

/** protobufjs's internal step of resolveAll that derives features from editions (no public form). */
interface FeatureResolution {
  _edition: string;
  _resolveFeaturesRecursive(edition: string): unknown;
}

/** The root: a type exists once looked up (by name, or by a field that refers to it). */
export class LazyRoot extends protobuf.Root {
  readonly #index: Record<string, string>;
  /** Top-level types built so far, by full name. */
  readonly #built = new Set<string>();
  /** What `lookupType` / `lookupEnum` answered, by full name (null: not one). */
  readonly #byName = new Map<string, protobuf.ReflectionObject | null>();

  constructor(index: TypeIndex) {
    super();
    this.#index = { ...index };
  }

  /** Adds types (from other .proto files) to the index; names it already has are kept. */
  addIndex(index: TypeIndex): void {
    for (const name of Object.keys(index)) this.#index[name] ??= index[name];
    this.#byName.clear();
  }

  /** How many top-level types have been built (the rest cost nothing but their index text). */
  get builtCount(): number {
    return this.#built.size;
  }

  /** Whether the top-level type holding `fullName` has been built. */
  isBuilt(fullName: string): boolean {
    const top = this.#topLevel(fullName);
    return top !== undefined && this.#built.has(top);
  }

  /** Every top-level type the index holds (for tests that compare it with a parsed root). */
  indexedNames(): string[] {
    return Object.keys(this.#index);
  }

  /**
   * The object with exactly that full name (no leading dot), built if needed, or null. Unlike
   * protobufjs's `lookup`, never answers with a type of another name (its relative search).
   */
  exact(fullName: string): protobuf.ReflectionObject | null {
    let found = this.#byName.get(fullName);
    if (found !== undefined) return found;
    this.#build(fullName);
    found = this as protobuf.ReflectionObject | null;
    for (const part of fullName.split('.')) {
      found = found instanceof protobuf.Namespace ? found.get(part) : null;
      if (found === null) break;
    }
    this.#byName.set(fullName, found);
    return found;
  }

  override lookup(path: string | string[], filterTypes?: unknown, parentAlreadyChecked?: boolean): protobuf.ReflectionObject | null {
    const name = typeof path === 'string' ? path : path.join('.');
    this.#build(name.startsWith('.') ? name.slice(1) : name);
    return super.lookup(path, filterTypes, parentAlreadyChecked);
  }

  /** The indexed top-level type `fullName` is or is nested in. */
  #topLevel(fullName: string): string | undefined {
    for (let end = fullName.length; end > 0; end = fullName.lastIndexOf('.', end - 1)) {
      const prefix = fullName.slice(0, end);
      if (this.#index[prefix] !== undefined) return prefix;
    }
    return undefined;
  }

  #build(fullName: string): void {
    const top = this.#topLevel(fullName);
    if (top === undefined || this.#built.has(top)) return;
    this.#built.add(top);
    const json = JSON.parse(this.#index[top]) as protobuf.IType | protobuf.IEnum;
    const dot = top.lastIndexOf('.');
    const local = top.slice(dot + 1);
    const obj = 'values' in json ? protobuf.Enum.fromJSON(local, json) : protobuf.Type.fromJSON(local, json);
    (dot < 0 ? this : this.define(top.slice(0, dot))).add(obj);
    // Editions features (packed encoding, presence) as a whole root has them before any codec
    // exists; protobufjs resolves them only in resolveAll and Type#setup otherwise.
    (this as unknown as FeatureResolution)._resolveFeaturesRecursive((this as unknown as FeatureResolution)._edition);
  }
}
