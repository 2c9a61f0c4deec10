/**
 * Snapshot names, shared by VictoriaMetrics and VictoriaLogs (both use VictoriaMetrics'
 * snapshotutil): `YYYYMMDDhhmmss-<HEX>`, the timestamp in UTC.
 */

/** The server's own validation regex (lib/snapshot/snapshotutil). */
const SNAPSHOT_NAME = /^[0-9]{14}-[0-9A-Fa-f]+$/;

export function isSnapshotName(name: string): boolean {
  return SNAPSHOT_NAME.test(name) && snapshotTime(name) !== undefined;
}

/** The creation time encoded in a name, or undefined if the name is not a valid snapshot name. */
export function snapshotTime(name: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})-[0-9A-Fa-f]+$/.exec(name);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Reject what Go's time.Parse would reject (month 13, day 32, …): the round trip must match.
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== s) {
    return undefined;
  }
  return t;
}

/**
 * The time the counts of a snapshot set end at: the earliest snapshot's, as data after it may be
 * missing from some snapshot (`fallback` for an empty set, e.g. VictoriaLogs without data).
 */
export function countsEnd(snapshots: ReadonlyArray<{ createdAt: Date }>, fallback: Date): Date {
  return snapshots.reduce((t, s) => (s.createdAt < t ? s.createdAt : t), snapshots[0]?.createdAt ?? fallback);
}

/** A VictoriaLogs partition name: a UTC day `YYYYMMDD`. */
export function isPartitionName(name: string): boolean {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (!m) return false;
  const [y, mo, d] = m.slice(1).map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}
