/**
 * VictoriaLogs partition and partition-snapshot API. Handles:
 * - v1.44+: `snapshot/create` with no prefix snapshots every partition and answers a JSON array
 *   of paths; delete takes the exact path and answers 204; a second delete answers 400
 *   `snapshot "…" doesn't exist at …` (not idempotent on the server, so it is here);
 * - v1.31-v1.43: create takes only `name=YYYYMMDD` (one partition) and fails without it with
 *   400 `cannot create snapshot from partition "", because it is missing`; its answer may be a
 *   JSON string instead of an array; there is no delete (400 unsupported path);
 * - releases after v1.52: every `/internal/*` path is POST-only (we always POST);
 * - paths are absolute, or relative when the server runs with a relative -storageDataPath: only
 *   the last four segments `partitions/<day>/snapshots/<name>` are used to find the files, and the
 *   string the server gave is what delete gets back.
 * Errors are plain text (400; 401 for the auth key), never JSON.
 */
import { SnapshotUndeletableError, VictoriaError, VictoriaResponseError } from './errors.js';
import { isUnsupportedPath, LONG_TIMEOUT_MS, type HttpClient, type TextResponse } from './http.js';
import { isPartitionName, isSnapshotName, snapshotTime } from './snapshot-names.js';
import type { Snapshot } from './types.js';

export const VL_PATHS = {
  partitionList: '/internal/partition/list',
  snapshotCreate: '/internal/partition/snapshot/create',
  snapshotList: '/internal/partition/snapshot/list',
  snapshotDelete: '/internal/partition/snapshot/delete',
} as const;

/** A JSON array of strings, or (v1.31-v1.43, lenient) a single JSON string. */
export function parseVlStringList(body: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (v === null) return [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new Error(`expected a JSON array of strings: ${JSON.stringify(body.slice(0, 200))}`);
}

/** A partition snapshot from the path the server gave (absolute or relative). */
export function vlSnapshotFromPath(path: string): Snapshot {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  const [partitionsDir, day, snapshotsDir, name] = parts.slice(-4);
  if (parts.length < 4 || partitionsDir !== 'partitions' || snapshotsDir !== 'snapshots' || day === undefined || name === undefined) {
    throw new Error(`snapshot path ${JSON.stringify(path)} does not end in partitions/<YYYYMMDD>/snapshots/<name>`);
  }
  if (!isPartitionName(day)) throw new Error(`snapshot path ${JSON.stringify(path)}: ${JSON.stringify(day)} is not a partition day YYYYMMDD`);
  const createdAt = snapshotTime(name);
  if (!isSnapshotName(name) || !createdAt) throw new Error(`snapshot path ${JSON.stringify(path)}: ${JSON.stringify(name)} is not a snapshot name`);
  return {
    kind: 'logs',
    name,
    handle: path,
    dir: `partitions/${day}/snapshots/${name}`,
    relPathPrefix: `partitions/${day}/`,
    partition: day,
    createdAt,
  };
}

/** 'detached': the partition is not attached, so the API cannot reach its snapshots (see classifyVlDelete). */
export type DeleteOutcome = 'deleted' | 'missing' | 'detached';

/**
 * What a snapshot/delete answer means; undefined for errors the caller must report.
 * "partition path … cannot be found across active partitions" is 'detached': the partition was
 * dropped by retention (its snapshots went with it) or detached (its directory and snapshots stay
 * on disk); only a look at the data directory tells which.
 */
export function classifyVlDelete(status: number, body: string): DeleteOutcome | undefined {
  if (status === 204 || status === 200) return 'deleted';
  if (status === 400 && /doesn't exist at/.test(body)) return 'missing';
  if (status === 400 && /cannot be found across active partitions/.test(body)) return 'detached';
  return undefined;
}

/** The v1.31-v1.43 answer to a create without `name=`. */
export function isLegacyCreateRefusal(res: Pick<TextResponse, 'status' | 'body'>): boolean {
  return res.status === 400 && /cannot create snapshot from partition ""/.test(res.body);
}

export class VlPartitionApi {
  constructor(private readonly http: HttpClient) {}


  /** Attached partitions, `YYYYMMDD`, by day. */
  async partitions(): Promise<string[]> {
    return this.strings(VL_PATHS.partitionList, {}, 'list partitions');
  }

  /** Paths of all snapshots in attached partitions. */
  async snapshotPaths(): Promise<string[]> {
    return this.strings(VL_PATHS.snapshotList, {}, 'list snapshots');
  }

  /**
   * Snapshots every attached partition; returns the paths. On servers older than v1.44 it falls
   * back to one call per partition, with `partition_prefix` and `name` both set to the day (correct
   * on every version), and removes what it made if a later call fails.
   */
  async snapshotAll(): Promise<string[]> {
    const res = await this.http.post(VL_PATHS.snapshotCreate, {}, { key: 'authKey', timeoutMs: LONG_TIMEOUT_MS });
    if (res.status === 200) return this.parse(VL_PATHS.snapshotCreate, res.body);
    if (isUnsupportedPath(res)) {
      throw new VictoriaError(
        `VictoriaLogs POST ${this.http.url(VL_PATHS.snapshotCreate)}: the server has no partition snapshot API: it is older than VictoriaLogs v1.31 (upgrade it), ` +
          `or it runs in cluster mode with -storageNode set (a vlinsert/vlselect node, which stores nothing: run the companion beside each storage node instead), ` +
          `or it is a VictoriaMetrics (then the kind is metrics: --kind metrics, VICTORIA_KIND=metrics): ${this.http.redact(res.body.trim())}${this.http.pathPrefixHint()}`,
        this.http.url(VL_PATHS.snapshotCreate),
      );
    }
    if (!isLegacyCreateRefusal(res)) throw this.http.httpError(VL_PATHS.snapshotCreate, res, 'authKey', 'create snapshots');

    const made: string[] = [];
    try {
      for (const day of await this.partitions()) made.push(...(await this.snapshotPartition(day)));
    } catch (err) {
      const settled = await Promise.allSettled(made.map((p) => this.deleteSnapshot(p)));
      const left = made.filter((_, i) => settled[i]!.status === 'rejected');
      // The error stays the one that stopped the run; what could not be cleaned up is added to it.
      if (left.length > 0 && err instanceof Error) err.message += `; the snapshots made before it could not be deleted, remove them by hand: ${left.join(', ')}`;
      throw err;
    }
    return made;
  }

  /** Snapshots one partition day (`[]` if it is not attached, on v1.44+). */
  async snapshotPartition(day: string): Promise<string[]> {
    if (!isPartitionName(day)) throw new TypeError(`not a partition day YYYYMMDD: ${JSON.stringify(day)}`);
    const res = await this.http.post(
      VL_PATHS.snapshotCreate,
      { partition_prefix: day, name: day },
      { key: 'authKey', timeoutMs: LONG_TIMEOUT_MS },
    );
    if (res.status !== 200) throw this.http.httpError(VL_PATHS.snapshotCreate, res, 'authKey', `create snapshot of partition ${day}`);
    return this.parse(VL_PATHS.snapshotCreate, res.body);
  }

  /** Deletes the snapshot at exactly this path (as the server gave it). */
  async deleteSnapshot(path: string): Promise<DeleteOutcome> {
    const res = await this.http.post(VL_PATHS.snapshotDelete, { path }, { key: 'authKey' });
    const outcome = classifyVlDelete(res.status, res.body);
    if (outcome !== undefined) return outcome;
    if (isUnsupportedPath(res)) {
      throw new SnapshotUndeletableError(
        `VictoriaLogs POST ${this.http.url(VL_PATHS.snapshotDelete)}: the server cannot delete partition snapshots (VictoriaLogs v1.44 or newer is needed); remove ${path} by hand`,
        this.http.url(VL_PATHS.snapshotDelete),
        [path],
      );
    }
    throw this.http.httpError(VL_PATHS.snapshotDelete, res, 'authKey', `delete snapshot ${path}`);
  }

  private async strings(path: string, params: Record<string, string>, what: string): Promise<string[]> {
    const res = await this.http.post(path, params, { key: 'authKey' });
    if (res.status !== 200) throw this.http.httpError(path, res, 'authKey', what);
    return this.parse(path, res.body);
  }

  private parse(path: string, body: string): string[] {
    try {
      return parseVlStringList(body);
    } catch (err) {
      throw new VictoriaResponseError(`VictoriaLogs POST ${this.http.url(path)}: ${this.http.redact((err as Error).message)}`, this.http.url(path));
    }
  }
}
