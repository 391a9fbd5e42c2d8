/**
 * Envoy's URI path templates (envoy.path.match.uri_template): literal segments, `*`, `{*}` or
 * `{name}` for exactly one non-empty path segment, `**`, `{**}` or `{name=**}` for any number of
 * characters including '/'. Compiled once into an anchored RegExp over the path without its
 * query. The character classes are RFC 3986 pchar, as Envoy's pattern_template library uses.
 */
import { configError } from '../../http/config-json.ts';

const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";
const ONE_SEGMENT = `[${PCHAR}]+`;
const MANY_SEGMENTS = `[${PCHAR}/]*`;

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function operator(seg: string): '*' | '**' | undefined {
  if (seg === '*' || seg === '{*}') return '*';
  if (seg === '**' || seg === '{**}') return '**';
  const m = /^\{[a-zA-Z][a-zA-Z0-9_]*(?:=(\*\*?))?\}$/.exec(seg);
  return m === null ? undefined : ((m[1] ?? '*') as '*' | '**');
}

/** Compile a path template like `/api/{*}/items/{**}`; throws a config error naming `path` when invalid. */
export function compileUriTemplate(template: string, path: string): RegExp {
  if (!template.startsWith('/')) configError(path, `path template '${template}' must start with '/'`);
  let src = '';
  for (const seg of template.slice(1).split('/')) {
    const op = operator(seg);
    if (op === '*') src += `/${ONE_SEGMENT}`;
    else if (op === '**') src += `/${MANY_SEGMENTS}`;
    else if (/[{}*]/.test(seg)) configError(path, `path template '${template}': invalid segment '${seg}'`);
    else src += `/${escape(seg)}`;
  }
  return new RegExp(`^${src}$`);
}
