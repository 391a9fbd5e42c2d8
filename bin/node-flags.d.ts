/** Types of bin/node-flags.js (plain JavaScript: it runs before the CLI loads any TypeScript). */
export declare const ProxySemiSpaceMb: number;
export declare function missingNodeFlags(args: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[];
export declare function execWithNodeFlags(args: readonly string[]): void;
