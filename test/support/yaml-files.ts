/**
 * The YAML files of a test input tree, for tests that read real-world inputs (the shared Istio
 * samples, conformance manifests, examples) file by file.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every `.yaml` / `.yml` file below `dir` (recursively), as full paths, sorted. */
export function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}
