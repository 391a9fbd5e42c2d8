/**
 * Field paths as diagnostics print them and SourceInfo.lineOf reads them:
 * `spec.http[0].route[1].destination.subset`; keys that are not plain identifiers are quoted,
 * `metadata.labels["app.kubernetes.io/name"]`.
 */

const PLAIN = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** Appends an object key to a path. */
export function joinKey(path: string, key: string): string {
  if (PLAIN.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Appends an array index to a path. */
export function joinIndex(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** Splits a field path into keys and indexes; undefined if malformed. */
export function splitPath(path: string): (string | number)[] | undefined {
  const out: (string | number)[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === '.') { i++; continue; }
    if (c === '[') {
      if (path[i + 1] === '"') {
        // JSON string key
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        try { out.push(JSON.parse(path.slice(i + 1, j + 1)) as string); } catch { return undefined; }
        if (path[j + 1] !== ']') return undefined;
        i = j + 2;
      } else {
        const j = path.indexOf(']', i);
        if (j < 0) return undefined;
        const n = Number(path.slice(i + 1, j));
        if (!Number.isInteger(n)) return undefined;
        out.push(n);
        i = j + 1;
      }
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    out.push(path.slice(i, j));
    i = j;
  }
  return out;
}
