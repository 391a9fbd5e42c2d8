/**
 * A protobufjs Root that builds a message or enum type the first time something looks it up, from
 * an index of each type's protobufjs JSON (see `indexTypes`). A proxy decodes a small part of the
 * ~760 Envoy types the shared root knows, and protobufjs's reflection objects for all of them cost
 * ~5 MB of heap in every process (2026-12-07 measurement; stripping their options saved nothing):
 * here a process pays for the types it touches and their direct field types.
 *
 * Laziness rests on one fact of protobufjs: a field resolves its type through
 * `parent.lookupTypeOrEnum(name)`, and an absolute name (leading dot) goes to `root.lookup`. So the
 * index stores every field's type as the absolute name it resolved to in the fully parsed root, and
 * `lookup` below builds the named type before protobufjs searches for it. Absolute names also keep
 * resolution exact: a relative name could resolve differently in a root that holds only some types.
 * A nested type is indexed on its own and built (after the type it is nested in) only when needed:
 * a message's codec resolves all its fields, and most nested types of a large message (a Cluster's
 * thirty) are never set. Adding a nested type to a built Type keeps that Type's generated codec
 * (protobufjs clears a Type's codec only when a field or oneof is added). Extension declarations
 * (the validate / udpa option annotations, which extend descriptor options) are not indexed:
 * nothing encodes or decodes descriptor options.
 */
import protobuf from 'protobufjs';

/** Message and enum types by full name (no leading dot), as protobufjs JSON text without nested types. */
export type TypeIndex = Readonly<Record<string, string>>;

/** Indexes every message and enum type, nested ones included, of a root whose fields are resolved. */
export function indexTypes(root: protobuf.Root): Record<string, string> {
  const index: Record<string, string> = {};
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum) {
        const json = obj.toJSON() as protobuf.IType & protobuf.IEnum & { nested?: unknown };
        delete json.nested;
        if (obj instanceof protobuf.Type) absoluteFieldTypes(obj, json);
        index[obj.fullName.slice(1)] = JSON.stringify(json);
      }
      if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Service)) walk(obj);
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
}

/** protobufjs's internal step of resolveAll that derives features from editions (no public form). */
interface FeatureResolution {
  _edition: string;
  _resolveFeaturesRecursive(edition: string): unknown;
}

/** The root: a type exists once looked up (by name, or by a field that refers to it). */
export class LazyRoot extends protobuf.Root {
  readonly #index: Record<string, string>;
  /** Types built so far, by full name. */
  readonly #built = new Map<string, protobuf.Type | protobuf.Enum>();
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

  /** How many types have been built (the rest cost nothing but their index text). */
  get builtCount(): number {
    return this.#built.size;
  }

  /** Whether the type `fullName` has been built. */
  isBuilt(fullName: string): boolean {
    return this.#built.has(fullName);
  }

  /** Every type the index holds (for tests that compare it with a parsed root). */
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

  /** Builds `fullName` if the index has it: first the type it is nested in, else its package. */
  #build(fullName: string): protobuf.Type | protobuf.Enum | undefined {
    const done = this.#built.get(fullName);
    if (done !== undefined) return done;
    const text = this.#index[fullName];
    if (text === undefined) return undefined;
    const json = JSON.parse(text) as protobuf.IType | protobuf.IEnum;
    const dot = fullName.lastIndexOf('.');
    const local = fullName.slice(dot + 1);
    const obj = 'values' in json ? protobuf.Enum.fromJSON(local, json) : protobuf.Type.fromJSON(local, json);
    const outer = dot < 0 ? this : (this.#build(fullName.slice(0, dot)) ?? this.define(fullName.slice(0, dot)));
    this.#built.set(fullName, obj);
    (outer as protobuf.Namespace).add(obj);
    // Editions features (packed encoding, presence) as a whole root has them before any codec
    // exists; protobufjs resolves them only in resolveAll and Type#setup otherwise.
    (this as unknown as FeatureResolution)._resolveFeaturesRecursive((this as unknown as FeatureResolution)._edition);
    return obj;
  }
}
