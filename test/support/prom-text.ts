/**
 * Parses Prometheus text exposition (what /stats/prometheus and /metrics serve) into samples, and
 * sums samples matching a name and label subset: enough for tests to check what a scrape holds.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Every sample line of a scrape (comments skipped). Throws on a line that is not a sample. */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while ((lm = re.exec(body)) !== null) {
      labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      consumed += lm[0].length;
    }
    if (consumed !== body.length) throw new Error(`malformed labels: ${line}`);
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** Samples named `name` whose labels include every pair of `match`. */
export function select(samples: readonly Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the values of `select(...)`. */
export function sumOf(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  return select(samples, name, match).reduce((a, s) => a + s.value, 0);
}

/** Fetches and parses a scrape. */
export async function scrape(port: number, path = '/stats/prometheus', host = '127.0.0.1'): Promise<Sample[]> {
  const res = await fetch(`http://${host}:${port}${path}`);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return parsePrometheusText(await res.text());
}
