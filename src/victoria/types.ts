/**
 * What the engine and the companion need from a Victoria database, and nothing more (README.md,
 * Development: Layout). Two implementations: `MetricsSource` (VictoriaMetrics single node,
 * metrics-source.ts) and `LogsSource` (VictoriaLogs single node, logs-source.ts).
 *
 * Paths in this file are relative to the database's data directory (`-storageDataPath`), use `/`
 * separators and have no leading or trailing `/`. The caller joins them onto its own mount of that
 * directory: the companion's mount point need not be the server's path.
 */

export type SourceKind = 'metrics' | 'logs';

/** Whether a label, flag or document value names a kind (anything else is refused by its reader, with its own words). */
export function isSourceKind(value: unknown): value is SourceKind {
  return value === 'metrics' || value === 'logs';
}

/**
 * One snapshot the server made. Its files are immutable hard links, safe to read while the
 * database runs, until the snapshot is deleted.
 *
 * A file at `<dataDir>/<dir>/<rel>` belongs in the backup as relPath `<relPathPrefix><rel>` and is
 * restored to `<dataDir>/<relPathPrefix><rel>`:
 *
 * - VictoriaMetrics: one snapshot per backup. `dir` = `snapshots/<name>`, `relPathPrefix` = `''`.
 *   The tree consists of relative symlinks (`data/small -> ../../../data/small/snapshots/<name>`
 *   …) that only resolve when the whole data directory is mounted: the walk (engine/files.ts)
 *   follows symlinks, so relPaths come out as `data/small/2026_11/<part>/index.bin`,
 *   `metadata/minTimestampForCompositeIndex`, … exactly what vmbackup uploads.
 * - VictoriaLogs: one snapshot per daily partition. `dir` = `partitions/<day>/snapshots/<name>`,
 *   `relPathPrefix` = `partitions/<day>/`. Plain files, no symlinks. Each partition is its own
 *   vmbackup-layout tree (docs/velero-backup.md, "What lands in the bucket"): within that tree the
 *   relPath is `<rel>` (`datadb/…`, `indexdb/…`), and `relPathPrefix` says where the tree goes back on restore.
 */
export interface Snapshot {
  kind: SourceKind;
  /** The server's name for it, `YYYYMMDDhhmmss-<HEX>` (UTC). Record it to delete stale ones. */
  name: string;
  /**
   * What `delete` must send back, verbatim: the name (VictoriaMetrics) or the exact path string the
   * server returned (VictoriaLogs compares it with its in-memory partition path).
   */
  handle: string;
  /** Directory holding the snapshot's files, relative to the data directory. */
  dir: string;
  /** Prefix of the files' relPaths in the backup, and where they are restored ('' or ending in '/'). */
  relPathPrefix: string;
  /** VictoriaLogs: the partition day `YYYYMMDD` (UTC). */
  partition?: string;
  /** When the server made it, from the name (the name's timestamp is UTC). */
  createdAt: Date;
}

/** Counts recorded at backup time and compared after a restore. */
export type Counts = MetricsCounts | LogsCounts;

export interface MetricsCounts {
  kind: 'metrics';
  /** Series with at least one sample in the counted range. */
  series: number;
  /** Raw samples in the counted range. */
  samples: number;
}

export interface LogsCounts {
  kind: 'logs';
  /** Log entries in the counted range. */
  rows: number;
  /** Log entries per daily partition (`YYYYMMDD` → count); days without entries are absent. */
  partitions: Record<string, number>;
}

export interface CountOptions {
  /**
   * Count only data with timestamps before this instant (exclusive), e.g. the snapshot time, so a
   * count taken while ingestion continues can be compared with a restored copy. Default: all data.
   */
  end?: Date;
  /**
   * Count only data with timestamps from this instant on (what `countStart` chose at backup time),
   * so that a restored copy is counted over the same range. Default: from the first sample.
   */
  start?: Date;
  /**
   * How long the counting query may take before the client gives up (ms). Default: LONG_TIMEOUT_MS
   * (http.ts). The plugin passes its `countTimeoutSeconds`, as a large database counts for longer.
   */
  timeoutMs?: number;
  /** Ends the count (a backup that failed or was stopped no longer needs it). */
  signal?: AbortSignal;
}

/** A database the engine can snapshot. All methods talk to the server over HTTP. */
export interface SnapshotSource {
  readonly kind: SourceKind;
  /** Base URL of the server, for messages (never carries credentials). */
  readonly url: string;
  /**
   * Flush buffered data, then snapshot everything. VictoriaMetrics returns one snapshot,
   * VictoriaLogs one per partition ([] for an empty database). If creating fails half-way, the
   * snapshots already made are deleted before the error is thrown.
   */
  create(): Promise<Snapshot[]>;
  /** Snapshots that exist now (VictoriaLogs: in attached partitions only). */
  list(): Promise<Snapshot[]>;
  /**
   * Delete these snapshots. Ones that are already gone are not an error, so a post hook can run
   * twice. Tries every snapshot and then throws one error naming all that failed.
   */
  delete(snapshots: readonly Snapshot[]): Promise<void>;
  /**
   * Delete those of `recorded` (left over by a failed run) that still exist; returns the ones
   * deleted. One that exists but cannot be deleted (a VictoriaLogs partition detached meanwhile)
   * is an error naming it, as for delete().
   */
  deleteStale(recorded: readonly Snapshot[]): Promise<Snapshot[]>;
  /** Flush, then count what the server stores (for restore verification). */
  counts(options?: CountOptions): Promise<Counts>;
  /**
   * Where a count made now should start so that a restored copy can repeat it (retention.ts):
   * an hour after the server's retention deadline; undefined when every sample stays visible or
   * the retention cannot be read.
   */
  countStart(signal?: AbortSignal): Promise<Date | undefined>;
  /** Server version such as `v1.145.0`, or undefined when the build does not report one (Debian builds). */
  version(): Promise<string | undefined>;
}

/** How to reach a server. */
export interface SourceOptions {
  /**
   * Base URL, e.g. `http://127.0.0.1:8428`; a path prefix (behind a proxy) is kept. Credentials in it
   * (`http://user:pass@host`) are sent as basic auth, for servers run with `-httpAuth.*`.
   */
  url: string;
  /**
   * `authKey` for the snapshot API: the server's `-snapshotAuthKey` (VictoriaMetrics) or
   * `-partitionManageAuthKey` (VictoriaLogs). Sent in the POST body, never in the URL.
   */
  authKey?: string;
  /** `authKey` for `/internal/force_flush`: the server's `-forceFlushAuthKey`. */
  forceFlushAuthKey?: string;
  /** How the user passes `authKey` / `forceFlushAuthKey` to us, named in auth errors. */
  authKeyOption?: string;
  forceFlushAuthKeyOption?: string;
  /**
   * The server's data directory as mounted here (read-only is enough). VictoriaLogs answers the
   * delete of a snapshot in a partition that is not attached the same way whether retention
   * dropped the partition (the snapshot went with it) or someone detached it (the snapshot stays);
   * with this, a snapshot still on disk is reported instead of counted as gone.
   */
  dataDir?: string;
  /** Per-request timeout in ms for quick calls (list, delete, flush). Default 30 s. */
  timeoutMs?: number;
}
