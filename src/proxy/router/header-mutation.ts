/**
 * Header mutations from route config, virtual host, route and weighted cluster levels
 * (request_headers_to_add / _to_remove, response_headers_to_add / _to_remove), compiled once into
 * frozen lists and applied to a per-request header map. Envoy's order: by default the most specific
 * level (weighted cluster, route) is applied first and the route configuration last, so on
 * overwrite the least specific wins; `most_specific_header_mutations_wins` reverses that.
 * Values may be Envoy format strings (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x)% ...; header-format.ts),
 * evaluated per request against the headers as they are after this level's removals.
 */
import { configError, optArr, optBool, optObj, optStr } from '../xds-json.ts';
import type { HeaderMap } from '../upstream/types.ts';
import { compileHeaderFormat, formatHeader, type FormatContext, type HeaderFormat } from './header-format.ts';
import { FormatStringError } from '../../xds/format-string.ts';

/** How an added header combines with an existing one (envoy.config.core.v3.HeaderValueOption.HeaderAppendAction). */
export type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

/** One compiled header addition. */
export interface HeaderAdd {
  readonly key: string;
  /** The configured value (a format string when `format` is set). */
  readonly value: string;
  /** Set when the value has format commands: evaluated per request. */
  readonly format: HeaderFormat | undefined;
  readonly action: AppendAction;
  readonly keepEmpty: boolean;
}

/** One level's mutations for one direction. */
export interface HeaderMutation {
  readonly add: readonly HeaderAdd[];
  readonly remove: readonly string[];
  /** Some value is a format string: applying this level needs a FormatContext. */
  readonly formatted: boolean;
}

export const EMPTY_MUTATION: HeaderMutation = Object.freeze({ add: Object.freeze([]), remove: Object.freeze([]), formatted: false });

const ACTIONS = new Set<AppendAction>(['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS']);

/** Compile `<dir>_headers_to_add` and `<dir>_headers_to_remove` of a config level. */
export function compileHeaderMutation(level: Record<string, unknown>, dir: 'request' | 'response', path: string): HeaderMutation {
  const addField = `${dir}_headers_to_add`;
  const removeField = `${dir}_headers_to_remove`;
  const add: HeaderAdd[] = optArr(level[addField], `${path}.${addField}`).map((raw, i) => {
    const p = `${path}.${addField}[${i}]`;
    const o = optObj(raw, p) ?? configError(p, 'expected a HeaderValueOption');
    const h = optObj(o.header, `${p}.header`) ?? configError(`${p}.header`, 'header is required');
    const key = (optStr(h.key, `${p}.header.key`) ?? '').toLowerCase();
    if (!/^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(key)) configError(`${p}.header.key`, `invalid header name '${key}'`);
    let value = optStr(h.value, `${p}.header.value`);
    if (value === undefined && typeof h.raw_value === 'string') value = Buffer.from(h.raw_value, 'base64').toString('latin1');
    value ??= '';
    if (/[\r\n\0]/.test(value)) configError(`${p}.header.value`, 'header value must not contain CR, LF or NUL');
    let compiled: HeaderFormat;
    try {
      compiled = compileHeaderFormat(value);
    } catch (err) {
      if (err instanceof FormatStringError) configError(`${p}.header.value`, err.message);
      throw err;
    }
    let action: AppendAction;
    if (o.append !== undefined && o.append_action !== undefined && o.append_action !== 'APPEND_IF_EXISTS_OR_ADD') {
      configError(p, 'Both append and append_action are set and it\'s not allowed');
    }
    if (o.append !== undefined) {
      action = (optBool(o.append, `${p}.append`) ?? true) ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
    } else if (o.append_action !== undefined) {
      const a = optStr(o.append_action, `${p}.append_action`) as AppendAction;
      if (!ACTIONS.has(a)) configError(`${p}.append_action`, `unknown append action '${a}'`);
      action = a;
    } else {
      action = 'APPEND_IF_EXISTS_OR_ADD';
    }
    return Object.freeze({
      key, value: typeof compiled === 'string' ? compiled : value, format: typeof compiled === 'string' ? undefined : compiled,
      action, keepEmpty: optBool(o.keep_empty_value, `${p}.keep_empty_value`) ?? false,
    });
  });
  const remove = optArr(level[removeField], `${path}.${removeField}`).map((r, i) => {
    const name = optStr(r, `${path}.${removeField}[${i}]`)?.toLowerCase() ?? '';
    // Envoy refuses to remove pseudo-headers and Host through this list.
    if (name.startsWith(':') || name === 'host') configError(`${path}.${removeField}[${i}]`, `'${name}' cannot be removed`);
    return name;
  });
  if (add.length === 0 && remove.length === 0) return EMPTY_MUTATION;
  return Object.freeze({ add: Object.freeze(add), remove: Object.freeze(remove), formatted: add.some((a) => a.format !== undefined) });
}

/**
 * Apply one level's mutation to `headers` in place, as Envoy's HeaderParser::evaluateHeaders:
 * removals first; then every addition's condition is judged against the headers as they are
 * before this level's additions; then all overwrites are applied, then all appends. So within one
 * level [A: append, B: overwrite] of one key yields [B, A], and two ADD_IF_ABSENT both add.
 */
export function applyHeaderMutation(headers: HeaderMap, m: HeaderMutation, ctx?: FormatContext): void {
  const remove = m.remove;
  for (let i = 0; i < remove.length; i++) delete headers[remove[i]];
  if (m.add.length === 0) return; // most levels of most routes: nothing to allocate
  if (m.add.length === 1) return applyOneHeader(headers, m.add[0], ctx); // no order to keep within the level
  const overwrite: [string, string][] = [];
  const append: [string, string][] = [];
  for (const a of m.add) {
    // Every value is formatted before any is added: formats read the headers as they were.
    const value = a.format === undefined ? a.value : formatHeader(a.format, ctx);
    if (value === '' && !a.keepEmpty) continue;
    const present = headers[a.key] !== undefined;
    switch (a.action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        append.push([a.key, value]);
        break;
      case 'ADD_IF_ABSENT':
        if (!present) append.push([a.key, value]);
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (present) overwrite.push([a.key, value]);
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        overwrite.push([a.key, value]);
        break;
    }
  }
  for (const [key, value] of overwrite) headers[key] = value;
  for (const [key, value] of append) {
    const cur = headers[key];
    if (cur === undefined) headers[key] = value;
    else headers[key] = Array.isArray(cur) ? [...cur, value] : [cur, value];
  }
}

/** One addition: the same rules as applyHeaderMutation without its staging arrays. */
function applyOneHeader(headers: HeaderMap, a: HeaderAdd, ctx: FormatContext | undefined): void {
  const value = a.format === undefined ? a.value : formatHeader(a.format, ctx);
  if (value === '' && !a.keepEmpty) return;
  const cur = headers[a.key];
  switch (a.action) {
    case 'ADD_IF_ABSENT':
      if (cur !== undefined) return;
      headers[a.key] = value;
      return;
    case 'APPEND_IF_EXISTS_OR_ADD':
      if (cur === undefined) headers[a.key] = value;
      else headers[a.key] = Array.isArray(cur) ? [...cur, value] : [cur, value];
      return;
    case 'OVERWRITE_IF_EXISTS':
      if (cur !== undefined) headers[a.key] = value;
      return;
    case 'OVERWRITE_IF_EXISTS_OR_ADD':
      headers[a.key] = value;
      return;
  }
}

/**
 * Apply a route's, its virtual host's and the route configuration's mutations in Envoy's order for
 * the `mostSpecificWins` setting: least specific first when the most specific wins (its writes come
 * last), else most specific first. Three arguments, not a list: a list per call cost an array and
 * its growth, twice per request (issue 16).
 */
export function applyHeaderMutationLevels(headers: HeaderMap, route: HeaderMutation, vhost: HeaderMutation, config: HeaderMutation, mostSpecificWins: boolean, ctx?: FormatContext): void {
  if (mostSpecificWins) {
    applyHeaderMutation(headers, config, ctx);
    applyHeaderMutation(headers, vhost, ctx);
    applyHeaderMutation(headers, route, ctx);
  } else {
    applyHeaderMutation(headers, route, ctx);
    applyHeaderMutation(headers, vhost, ctx);
    applyHeaderMutation(headers, config, ctx);
  }
}
