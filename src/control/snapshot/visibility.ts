/**
 * Istio's `exportTo` rule and host matching for the snapshot indexes: re-exported from
 * src/config/host.ts, the one home of host rules (case-insensitive DNS names, `*` and `*.suffix`
 * wildcards, exportTo `*` / `.` / `~` / names).
 */
export { exportedTo, hostMatches, hostsIntersect } from '../../config/host.ts';
