/**
 * How a `trellis` verb describes itself: one `CommandSpec` per verb (src/cli/commands*.ts) is the
 * single source of its flags (parsed with node:util parseArgs), its `--help` text and its page in
 * docs/reference/cli.md (scripts/gen-docs.ts), so the three never disagree. Specs are plain data
 * and cheap to import: `trellis --help` lists every verb without loading any verb's code.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './args.ts';

/** One flag. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** Placeholder for the value in help (`DIR`, `N`, `URL`). */
  readonly value?: string;
  /** What it does; may span sentences. Empty for hidden flags. */
  readonly help: string;
  /** Internal flags (used between our own processes) are parsed but not documented. */
  readonly hidden?: boolean;
}

/** One verb. */
export interface CommandSpec {
  readonly name: string;
  /** One line for `trellis --help`. */
  readonly summary: string;
  /** Usage lines, each after `trellis `. */
  readonly usage: readonly string[];
  /** Paragraphs (separated by blank lines) shown under the usage. */
  readonly description: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly allowPositionals: boolean;
  readonly examples?: readonly { readonly command: string; readonly note: string }[];
  /** Environment variables the verb reads. */
  readonly environment?: readonly { readonly name: string; readonly help: string }[];
  readonly exitStatus?: string;
}

const WIDTH = 100;

/** Wraps `text` to `width` columns, every line after the first indented by `indent`. */
export function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent + w;
    } else {
      line = line === '' ? (lines.length === 0 ? w : indent + w) : `${line} ${w}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** `--config DIR`, `-o, --output FMT`. */
export function flagLabel(name: string, o: OptionSpec): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  return o.short !== undefined ? `-${o.short}, ${long}` : `    ${long}`;
}

/** Visible options plus the implicit `-h, --help`. */
export function visibleOptions(spec: CommandSpec): [string, OptionSpec][] {
  const out = Object.entries(spec.options).filter(([, o]) => o.hidden !== true);
  out.push(['help', { type: 'boolean', short: 'h', help: 'show this help' }]);
  return out;
}

/** Default shown in help: `(default .trellis)`; booleans and flags without one show nothing. */
function defaultNote(o: OptionSpec): string {
  return o.type === 'string' && typeof o.default === 'string' && !/\(default /.test(o.help) ? ` (default ${o.default})` : '';
}

/** The `trellis VERB --help` text. */
export function renderHelp(spec: CommandSpec): string {
  const out: string[] = [];
  spec.usage.forEach((u, i) => out.push(`${i === 0 ? 'usage: ' : '       '}${wrap(`trellis ${u}`, WIDTH - 7, `${' '.repeat(15 + spec.name.length)}`)}`));
  out.push('');
  for (const para of spec.description.split(/\n\s*\n/)) out.push(wrap(para, WIDTH, ''), '');
  const opts = visibleOptions(spec);
  out.push('options:');
  const labels = opts.map(([n, o]) => flagLabel(n, o));
  const col = Math.min(28, Math.max(...labels.map((l) => l.length)) + 2);
  opts.forEach(([, o], i) => {
    const label = `  ${labels[i]}`;
    const help = o.help + defaultNote(o) + (o.multiple ? ' (repeatable)' : '');
    const pad = label.length + 1 > col + 2 ? `${label}\n${' '.repeat(col + 2)}` : label.padEnd(col + 2);
    out.push(pad + wrap(help, WIDTH - col - 2, ' '.repeat(col + 2)));
  });
  if (spec.environment !== undefined && spec.environment.length > 0) {
    out.push('', 'environment:');
    for (const e of spec.environment) out.push(`  ${e.name.padEnd(col)}${wrap(e.help, WIDTH - col - 2, ' '.repeat(col + 2))}`);
  }
  if (spec.examples !== undefined && spec.examples.length > 0) {
    out.push('', 'examples:');
    for (const e of spec.examples) out.push(`  trellis ${e.command}`, `      ${wrap(e.note, WIDTH - 6, '      ')}`);
  }
  if (spec.exitStatus !== undefined) out.push('', wrap(`exit status: ${spec.exitStatus}`, WIDTH, '             '));
  return out.join('\n') + '\n';
}

type ParseArgsOptions<S extends CommandSpec> = S['options'] & { help: { type: 'boolean'; short: 'h' } };

/**
 * Parses `args` against the verb's options (plus `-h, --help`); throws UsageError naming the verb
 * on an unknown or malformed flag, or on positionals the verb does not take.
 */
export function parseCommand<S extends CommandSpec>(spec: S, args: string[]) {
  const options = { ...spec.options, help: { type: 'boolean', short: 'h' } } as ParseArgsOptions<S>;
  try {
    return parseArgs({ args, options, allowPositionals: spec.allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${spec.name}: ${(err as Error).message} (see trellis ${spec.name} --help)`, err);
  }
}
