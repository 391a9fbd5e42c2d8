/**
 * `--profile`: the Trellis proxies run under `node --cpu-prof`; this reads the `.cpuprofile`
 * files they write on exit and lists the top frames by self time (sample counts times the
 * mean sampling interval), which is where the issue wants us to look when we fall short.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface CpuNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface CpuProfile { nodes: CpuNode[]; startTime: number; endTime: number; samples?: number[] }

/** One frame's self time (percent of non-idle samples). */
export interface Frame { frame: string; selfMs: number; percent: number }

/** Top frames by self time of one .cpuprofile file. */
export function topFrames(file: string, root: string, n = 15): Frame[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const allHits = prof.nodes.reduce((s, x) => s + (x.hitCount ?? 0), 0) || 1;
  const msPerHit = (prof.endTime - prof.startTime) / 1000 / allHits;
  // Percentages are of busy time: an idle proxy between runs says nothing about where work goes.
  const totalHits = prof.nodes.reduce((s, x) => s + (x.callFrame.functionName === '(idle)' ? 0 : (x.hitCount ?? 0)), 0) || 1;
  const byFrame = new Map<string, number>();
  for (const node of prof.nodes) {
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') continue;
    const where = cf.url ? `${cf.url.startsWith('file://') ? relative(root, cf.url.slice(7)) : cf.url}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    byFrame.set(key, (byFrame.get(key) ?? 0) + (node.hitCount ?? 0));
  }
  return [...byFrame.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([frame, hits]) => ({ frame, selfMs: hits * msPerHit, percent: (hits / totalHits) * 100 }));
}

/** The files ending in `ext` under `dir` (one subdirectory per proxy): `.cpuprofile` or `.heapprofile`. */
export function profilesIn(dir: string, ext = '.cpuprofile'): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...profilesIn(full, ext));
    else if (entry.name.endsWith(ext)) out.push(full);
  }
  return out.sort();
}

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children?: HeapNode[] }

/** Top allocation sites of one .heapprofile (sampling heap profiler, collected objects included), by bytes. */
export function topAllocations(file: string, root: string, n = 15): { frame: string; mb: number; percent: number; totalMb: number }[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode) => {
    const cf = node.callFrame;
    const where = cf.url ? `${cf.url.startsWith('file://') ? relative(root, cf.url.slice(7)) : cf.url}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children ?? []) walk(c);
  };
  walk(prof.head);
  const totalMb = total / 1048576;
  return [...bySite.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([frame, bytes]) => ({ frame, mb: bytes / 1048576, percent: (bytes / (total || 1)) * 100, totalMb }));
}
