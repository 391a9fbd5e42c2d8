/** Types of bin/entry.js (plain JavaScript so that the CLI picks its entry without a TypeScript loader). */
export declare const STAMP: string;
/** [path relative to the src dir, size, mtime ms] of every file the build compiles or copies, sorted. */
export declare function sourceFiles(srcDir: string): [string, number, number][];
export declare function distIsCurrent(root: string): boolean;
export declare function chooseEntry(root: string, env?: Record<string, string | undefined>): string;
