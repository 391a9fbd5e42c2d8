/** Types of bin/node-flags.js (plain JavaScript: it runs before any TypeScript can load). */
export declare const DEFAULT_PROXY_NODE_FLAGS: string[];
export declare const APPLIED_ENV: string;
export declare function proxyNodeFlags(cliArgs: string[], execArgv: string[], env: Record<string, string | undefined>): string[] | undefined;
