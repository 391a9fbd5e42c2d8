/**
 * Istio durations (Go syntax as written in YAML: `1h30m`, `1.5s`, `250ms`) to proto3 JSON
 * Duration strings (`"5400s"`, `"0.25s"`). Malformed input yields undefined: the caller leaves the
 * field unset (Envoy's default) rather than emitting a value Envoy would reject.
 */

const units: Readonly<Record<string, number>> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 };

/** Seconds, or undefined when malformed. */
export function durationSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * units[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === t.length && consumed > 0 ? total : undefined;
}

/** Seconds as a proto3 JSON Duration. */
export function secondsJson(seconds: number): string {
  return `${seconds.toFixed(9).replace(/\.?0+$/, '')}s`;
}

/** A Go-style duration as proto3 JSON, or undefined. */
export function protoDuration(text: string | undefined): string | undefined {
  const s = durationSeconds(text);
  return s === undefined ? undefined : secondsJson(s);
}
