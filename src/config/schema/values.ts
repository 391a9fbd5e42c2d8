/**
 * Value checks that the upstream CRD schemas do not express but a proxy would trip over:
 * protobuf/Go durations, RE2 regexes (what Envoy compiles; JavaScript accepts constructs RE2
 * rejects, e.g. lookaround and backreferences), IP addresses and CIDRs, ports, DNS names and
 * Istio's host forms. Each check returns a problem (code + message) or undefined; they are
 * attached to schema nodes by name through `x-trellis-check` (see checks.ts).
 */
import { isIP } from 'node:net';

/** A value problem: stable diagnostic code and a human message. */
export interface ValueProblem {
  code: string;
  message: string;
  /** Sub-path below the checked value, when the check looks inside an object (e.g. `regex`). */
  subPath?: string;
}

const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;

/** Parses a Go / Istio protobuf duration ("1s", "500ms", "1h30m", "0.25s") into milliseconds; undefined if malformed. */
export function parseDurationMs(s: string): number | undefined {
  if (s === '0') return 0;
  if (!GO_DURATION.test(s)) return undefined;
  const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * unitMs[m[2]];
  return total;
}

/** Checks an Istio (protobuf JSON, Go syntax accepted) duration. */
export function checkDuration(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected a duration string like "1s", got ${describe(v)}` };
  const ms = parseDurationMs(v);
  if (ms === undefined) return { code: 'BAD_DURATION', message: `"${v}" is not a duration (use e.g. "500ms", "1s", "1m30s", "1h")` };
  return undefined;
}

/**
 * Checks that `src` is a regex RE2 (Envoy's engine) accepts: RE2 has no lookaround, no
 * backreferences, no atomic groups or possessive quantifiers, and caps repetition at 1000.
 * RE2-only syntax ((?P<name>), \A, \z, \Q..\E, inline flags) is translated before JavaScript
 * compiles it for the remaining syntax check.
 */
export function checkRe2(src: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) return 'trailing backslash';
      if (!inClass && n >= '1' && n <= '9') return `backreference \\${n} is not supported by RE2`;
      if (n === 'k' && src[i + 2] === '<') return 'named backreference is not supported by RE2';
      if (n === 'Q') { const end = src.indexOf('\\E', i + 2); i = end < 0 ? src.length : end + 1; continue; }
      i++;
      continue;
    }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') { inClass = true; if (src[i + 1] === '^') i++; if (src[i + 1] === ']') i++; continue; }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!')) return 'lookahead (?= / (?! is not supported by RE2';
      if (rest === '<=' || rest === '<!') return 'lookbehind (?<= / (?<! is not supported by RE2';
      if (rest.startsWith('>')) return 'atomic group (?> is not supported by RE2';
      if (rest.startsWith('(')) return 'conditional group is not supported by RE2';
    }
    if ((c === '*' || c === '+' || c === '?' || c === '}') && src[i + 1] === '+' && i > 0 && src[i - 1] !== '\\') {
      return 'possessive quantifier is not supported by RE2';
    }
    if (c === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(src.slice(i));
      if (m && (Number(m[1]) > 1000 || (m[2] !== undefined && m[2] !== '' && Number(m[2]) > 1000))) {
        return `repetition count ${m[0]} exceeds RE2's limit of 1000`;
      }
    }
  }
  const js = src
    .replace(/\\Q(.*?)(\\E|$)/gs, (_m, lit: string) => lit.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsU]+\)/g, '')
    .replace(/\(\?[imsU]*-?[imsU]*:/g, '(?:')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$')
    .replace(/\[\[:\^?[a-z]+:\]\]/g, '[a-z]')
    .replace(/\[:\^?[a-z]+:\]/g, 'a-z');
  try {
    new RegExp(js);
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, '');
  }
  return undefined;
}

/** Checks a regex value. */
export function checkRegex(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected a regular expression string, got ${describe(v)}` };
  const why = checkRe2(v);
  return why ? { code: 'BAD_REGEX', message: `invalid RE2 regex ${JSON.stringify(v)}: ${why}` } : undefined;
}

/** Checks an IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `1.2.3.4`). */
export function checkIpOrCidr(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected an IP or CIDR string, got ${describe(v)}` };
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  const fam = isIP(ip);
  if (fam === 0) return { code: 'BAD_CIDR', message: `"${v}" is not an IP address or CIDR block` };
  if (slash >= 0) {
    const bits = v.slice(slash + 1);
    const max = fam === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return { code: 'BAD_CIDR', message: `"${v}": prefix length must be 0..${max}` };
  }
  return undefined;
}

/** Checks a plain IP address. */
export function checkIp(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected an IP address string, got ${describe(v)}` };
  return isIP(v) ? undefined : { code: 'BAD_CIDR', message: `"${v}" is not an IP address` };
}

/** Checks a TCP/UDP port number 1..65535. */
export function checkPort(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) return { code: 'WRONG_TYPE', message: `expected a port number, got ${describe(v)}` };
  return v >= 1 && v <= 65535 ? undefined : { code: 'BAD_PORT', message: `port ${v} is out of range 1..65535` };
}

const IANA_SVC_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Checks a port that may be a number or a named port (Kubernetes `targetPort`). */
export function checkPortOrName(v: unknown): ValueProblem | undefined {
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return checkPort(Number(v));
    return IANA_SVC_NAME.test(v) ? undefined : { code: 'BAD_PORT', message: `"${v}" is neither a port number nor a valid port name` };
  }
  return checkPort(v);
}

/** Checks a port written as a string (AuthorizationPolicy `ports`). */
export function checkPortString(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected a port as a string, got ${describe(v)}` };
  if (!/^\d+$/.test(v)) return { code: 'BAD_PORT', message: `"${v}" is not a port number` };
  return checkPort(Number(v));
}

const DNS_LABEL = /^[a-zA-Z0-9_]([-a-zA-Z0-9_]{0,61}[a-zA-Z0-9_])?$/;

function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  return s.split('.').every((l) => DNS_LABEL.test(l));
}

/** Checks a DNS name without wildcard. */
export function checkHostname(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected a host name, got ${describe(v)}` };
  return isDnsName(v) ? undefined : { code: 'BAD_HOSTNAME', message: `"${v}" is not a valid DNS name` };
}

/** Checks an Istio host: `*`, `*.example.com`, `reviews`, `reviews.ns.svc.cluster.local` or an IP. */
export function checkIstioHost(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected a host, got ${describe(v)}` };
  if (v === '*' || isIP(v) !== 0) return undefined;
  const rest = v.startsWith('*.') ? v.slice(2) : v.startsWith('*') ? v.slice(1) : v;
  return isDnsName(rest) ? undefined : { code: 'BAD_HOSTNAME', message: `"${v}" is not a valid host (DNS name, optionally with a leading "*.")` };
}

/** Checks a `namespace/host` entry (Istio Gateway server hosts, Sidecar egress hosts); the namespace part is optional for Gateway. */
export function checkNamespacedHost(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected "namespace/host", got ${describe(v)}` };
  const parts = v.split('/');
  if (parts.length > 2) return { code: 'BAD_HOSTNAME', message: `"${v}" must be "host" or "namespace/host"` };
  if (parts.length === 2) {
    const ns = parts[0];
    if (!(ns === '*' || ns === '.' || ns === '~' || /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns))) {
      return { code: 'BAD_HOSTNAME', message: `"${v}": namespace part must be "*", ".", "~" or a namespace name` };
    }
  }
  const p = checkIstioHost(parts[parts.length - 1]);
  return p ? { code: p.code, message: `"${v}": ${p.message}` } : undefined;
}

/** Checks an endpoint address: IP, DNS name or `unix://` socket path (ServiceEntry/WorkloadEntry). */
export function checkEndpointAddress(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'WRONG_TYPE', message: `expected an address, got ${describe(v)}` };
  if (v.startsWith('unix://')) return v.length > 7 ? undefined : { code: 'BAD_VALUE', message: 'unix:// address needs a path' };
  if (isIP(v) !== 0 || isDnsName(v)) return undefined;
  return { code: 'BAD_VALUE', message: `"${v}" is not an IP address, DNS name or unix:// path` };
}

/** Checks a percentage 0..100. */
export function checkPercent(v: unknown): ValueProblem | undefined {
  if (typeof v !== 'number') return { code: 'WRONG_TYPE', message: `expected a number 0..100, got ${describe(v)}` };
  return v >= 0 && v <= 100 ? undefined : { code: 'BAD_VALUE', message: `${v} is not a percentage in 0..100` };
}

/** A short description of a value's JSON type, for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}
