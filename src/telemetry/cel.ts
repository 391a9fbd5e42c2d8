/**
 * The subset of CEL (Common Expression Language) that Istio documents for access-log filters
 * (Telemetry `accessLogging.filter.expression`, Envoy's CEL access-log filter): attribute paths
 * (`response.code`, `request.headers['x-user']`, `connection.mtls`), string / int / double / bool
 * literals, `== != < <= > >=`, `in` (list literal or map keys), `&& || !`, parentheses, `has(x.y)`,
 * and the string functions `startsWith`, `endsWith`, `contains`, `matches`. Compiled once into a
 * closure; evaluation reads attributes through a lookup function, so nothing is computed for
 * attributes an expression does not name.
 *
 * As in CEL, a missing attribute or a type error is an error, not false: `evaluate` returns
 * undefined then, and a filter treats that as "no match" (Envoy drops the log line).
 */

/** A value an expression works with. */
export type CelValue = string | number | boolean | null | readonly CelValue[] | ReadonlyMap<string, CelValue>;

/** Reads an attribute by its dotted path (`request.method`); undefined when absent. */
export type AttributeLookup = (path: string) => CelValue | undefined;

/** A compiled expression. */
export type CelProgram = (lookup: AttributeLookup) => CelValue;

/** A malformed or unsupported expression; the message says where. */
export class CelError extends Error {}

class EvalError extends Error {}

type Tok = { t: 'num'; v: number } | { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string } | { t: 'end' };

const Ops = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.', ',', '-'];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^(\d+(?:\.\d+)?)u?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[1]) });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) j++;
        s += src[j++];
      }
      if (j >= src.length) throw new CelError(`unterminated string at position ${i}`);
      out.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    const op = Ops.find((o) => src.startsWith(o, i));
    if (op === undefined) throw new CelError(`unexpected '${c}' at position ${i}`);
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  out.push({ t: 'end' });
  return out;
}

type Node = (l: AttributeLookup) => CelValue;

function truthy(v: CelValue): boolean {
  if (typeof v !== 'boolean') throw new EvalError('not a bool');
  return v;
}

function compare(op: string, a: CelValue, b: CelValue): boolean {
  if (op === '==' || op === '!=') {
    const eq = a === b || (a instanceof Map && b instanceof Map && a.size === b.size);
    return op === '==' ? eq : !eq;
  }
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) throw new EvalError('not comparable');
  const x = a as number | string;
  const y = b as number | string;
  return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
}

class Parser {
  #toks: Tok[];
  #at = 0;
  constructor(src: string) {
    this.#toks = tokenize(src);
  }

  #peek(): Tok {
    return this.#toks[this.#at];
  }

  #isOp(v: string): boolean {
    const t = this.#peek();
    return t.t === 'op' && t.v === v;
  }

  #expect(v: string): void {
    if (!this.#isOp(v)) throw new CelError(`expected '${v}' at token ${this.#at + 1}`);
    this.#at++;
  }

  parse(): Node {
    const n = this.#or();
    if (this.#peek().t !== 'end') throw new CelError(`unexpected token ${this.#at + 1}`);
    return n;
  }

  #or(): Node {
    let n = this.#and();
    while (this.#isOp('||')) {
      this.#at++;
      const a = n;
      const b = this.#and();
      n = (l) => {
        // CEL's commutative || : true wins over an error on either side.
        let ea: unknown;
        try {
          if (truthy(a(l))) return true;
        } catch (e) {
          ea = e;
        }
        if (truthy(b(l))) return true;
        if (ea !== undefined) throw ea;
        return false;
      };
    }
    return n;
  }

  #and(): Node {
    let n = this.#unary();
    while (this.#isOp('&&')) {
      this.#at++;
      const a = n;
      const b = this.#unary();
      n = (l) => {
        let ea: unknown;
        try {
          if (!truthy(a(l))) return false;
        } catch (e) {
          ea = e;
        }
        if (!truthy(b(l))) return false;
        if (ea !== undefined) throw ea;
        return true;
      };
    }
    return n;
  }

  #unary(): Node {
    if (this.#isOp('!')) {
      this.#at++;
      const a = this.#unary();
      return (l) => !truthy(a(l));
    }
    return this.#cmp();
  }

  #cmp(): Node {
    const a = this.#postfix();
    const t = this.#peek();
    if (t.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) {
      this.#at++;
      const b = this.#postfix();
      return (l) => compare(t.v, a(l), b(l));
    }
    if (t.t === 'id' && t.v === 'in') {
      this.#at++;
      const b = this.#postfix();
      return (l) => {
        const x = a(l);
        const set = b(l);
        if (Array.isArray(set)) return set.includes(x);
        if (set instanceof Map) return typeof x === 'string' && set.has(x);
        throw new EvalError('in: not a list or map');
      };
    }
    return a;
  }

  #postfix(): Node {
    let n = this.#primary();
    for (;;) {
      if (this.#isOp('[')) {
        this.#at++;
        const key = this.#or();
        this.#expect(']');
        const base = n;
        n = (l) => {
          const m = base(l);
          const k = key(l);
          if (m instanceof Map && typeof k === 'string') {
            const v = m.get(k);
            if (v === undefined) throw new EvalError(`no key ${k}`);
            return v;
          }
          if (Array.isArray(m) && typeof k === 'number' && k < m.length) return m[k];
          throw new EvalError('bad index');
        };
        continue;
      }
      if (this.#isOp('.')) {
        this.#at++;
        const name = this.#peek();
        if (name.t !== 'id') throw new CelError(`expected a name after '.' at token ${this.#at + 1}`);
        this.#at++;
        if (!this.#isOp('(')) throw new CelError(`field access on an expression is not supported (.${name.v})`);
        this.#at++;
        const arg = this.#or();
        this.#expect(')');
        n = this.#method(n, name.v, arg);
        continue;
      }
      return n;
    }
  }

  #method(target: Node, name: string, arg: Node): Node {
    const strs = (l: AttributeLookup): [string, string] => {
      const s = target(l);
      const a = arg(l);
      if (typeof s !== 'string' || typeof a !== 'string') throw new EvalError(`${name}: not strings`);
      return [s, a];
    };
    switch (name) {
      case 'startsWith': return (l) => { const [s, a] = strs(l); return s.startsWith(a); };
      case 'endsWith': return (l) => { const [s, a] = strs(l); return s.endsWith(a); };
      case 'contains': return (l) => { const [s, a] = strs(l); return s.includes(a); };
      case 'matches': {
        const cache = new Map<string, RegExp>();
        return (l) => {
          const [s, a] = strs(l);
          let re = cache.get(a);
          if (re === undefined) cache.set(a, (re = new RegExp(a)));
          return re.test(s);
        };
      }
      default: throw new CelError(`unsupported function '${name}' (startsWith, endsWith, contains, matches are)`);
    }
  }

  #path(first: string): string {
    let p = first;
    while (this.#isOp('.') && this.#toks[this.#at + 1]?.t === 'id' && !(this.#toks[this.#at + 2]?.t === 'op' && (this.#toks[this.#at + 2] as { v: string }).v === '(')) {
      p += `.${(this.#toks[this.#at + 1] as { v: string }).v}`;
      this.#at += 2;
    }
    return p;
  }

  #primary(): Node {
    const t = this.#peek();
    this.#at++;
    if (t.t === 'num') return () => t.v;
    if (t.t === 'str') return () => t.v;
    if (t.t === 'op' && t.v === '-') {
      const n = this.#peek();
      if (n.t !== 'num') throw new CelError(`expected a number after '-' at token ${this.#at}`);
      this.#at++;
      return () => -n.v;
    }
    if (t.t === 'op' && t.v === '(') {
      const n = this.#or();
      this.#expect(')');
      return n;
    }
    if (t.t === 'op' && t.v === '[') {
      const items: Node[] = [];
      while (!this.#isOp(']')) {
        items.push(this.#or());
        if (!this.#isOp(']')) this.#expect(',');
      }
      this.#at++;
      return (l) => items.map((i) => i(l));
    }
    if (t.t === 'id') {
      if (t.v === 'true') return () => true;
      if (t.v === 'false') return () => false;
      if (t.v === 'null') return () => null;
      if (t.v === 'has' && this.#isOp('(')) {
        this.#at++;
        const id = this.#peek();
        if (id.t !== 'id') throw new CelError('has() needs an attribute path');
        this.#at++;
        const path = this.#path(id.v);
        let key: Node | undefined;
        if (this.#isOp('[')) {
          this.#at++;
          key = this.#or();
          this.#expect(']');
        }
        this.#expect(')');
        return (l) => {
          const v = l(path);
          if (v === undefined) return false;
          if (key === undefined) return true;
          const k = key(l);
          return v instanceof Map && typeof k === 'string' && v.has(k);
        };
      }
      const path = this.#path(t.v);
      return (l) => {
        const v = l(path);
        if (v === undefined) throw new EvalError(`no such attribute ${path}`);
        return v;
      };
    }
    throw new CelError(`unexpected token ${this.#at}`);
  }
}

/** Compiles an expression; throws CelError naming what is wrong. */
export function compileCel(expression: string): CelProgram {
  const node = new Parser(expression).parse();
  return (l) => node(l);
}

/** Evaluates a program: the value, or undefined on an evaluation error (missing attribute, type error). */
export function evaluateCel(p: CelProgram, lookup: AttributeLookup): CelValue | undefined {
  try {
    return p(lookup);
  } catch (e) {
    if (e instanceof EvalError) return undefined;
    throw e;
  }
}
