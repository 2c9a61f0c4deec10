/** VictoriaLogs single node as a SnapshotSource (types.ts): one snapshot per daily partition. */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { deleteEach } from './delete-all.js';
import { SnapshotUndeletableError, VictoriaDeleteError, VictoriaResponseError } from './errors.js';
import { HttpClient } from './http.js';
import type { CountOptions, LogsCounts, Snapshot, SnapshotSource, SourceOptions } from './types.js';
import { countStart, serverRetentionMs } from './retention.js';
import { readVersion } from './version.js';
import { countLogs } from './vl-counts.js';
import { VL_PATHS, VlPartitionApi, vlSnapshotFromPath } from './vl-partitions.js';

export class LogsSource implements SnapshotSource {
  readonly kind = 'logs' as const;
  readonly url: string;
  readonly http: HttpClient;
  readonly partitions: VlPartitionApi;
  private readonly dataDir: string | undefined;

  constructor(options: SourceOptions, dispatcher?: Dispatcher) {
    this.http = new HttpClient('VictoriaLogs', options, dispatcher);
    this.dataDir = options.dataDir;
    this.url = this.http.baseUrl;
    this.partitions = new VlPartitionApi(this.http);
  }

  /** force_flush (required: snapshots do not flush the row buffer), then snapshot every partition. */
  async create(): Promise<Snapshot[]> {
    await this.http.forceFlush();
    const paths = await this.partitions.snapshotAll();
    try {
      return paths.map(vlSnapshotFromPath);
    } catch (err) {
      // A path we cannot map onto the data directory is useless to the engine: do not leave it behind.
      await Promise.allSettled(paths.map((p) => this.partitions.deleteSnapshot(p)));
      throw new VictoriaResponseError(`VictoriaLogs POST ${this.http.url(VL_PATHS.snapshotCreate)}: ${(err as Error).message}`, this.http.url(VL_PATHS.snapshotCreate));
    }
  }

  /** Snapshots in attached partitions; paths that are not ours to understand are skipped. */
  async list(): Promise<Snapshot[]> {
    const out: Snapshot[] = [];
    for (const p of await this.partitions.snapshotPaths()) {
      try {
        out.push(vlSnapshotFromPath(p));
      } catch {
        // VictoriaLogs itself skips invalid names in the snapshots directory; so do we.
      }
    }
    return out;
  }

  async delete(snapshots: readonly Snapshot[]): Promise<void> {
    const detached: Snapshot[] = [];
    let noApi: SnapshotUndeletableError | undefined;
    try {
      await deleteEach(
        snapshots,
        async (s) => {
          // A server without the delete API refuses them all: one refusal is enough to know.
          if (noApi) throw new SnapshotUndeletableError(noApi.message, noApi.url, [s.handle]);
          try {
            if ((await this.partitions.deleteSnapshot(s.handle)) === 'detached') detached.push(s);
          } catch (err) {
            if (err instanceof SnapshotUndeletableError) noApi = err;
            throw err;
          }
        },
        'VictoriaLogs',
        this.url,
      );
    } catch (err) {
      // A server without the delete API refuses every one of them: one error naming them all.
      const each = err instanceof VictoriaDeleteError ? err.errors : [err];
      if (!each.every((e) => e instanceof SnapshotUndeletableError)) throw err;
      const paths = snapshots.map((s) => s.handle);
      throw new SnapshotUndeletableError(
        `VictoriaLogs at ${this.url} cannot delete partition snapshots through its API (v1.44 or newer can): ${paths.length} snapshot(s) stay on disk ` +
          `until removed by hand (rm -r in the database container, or anywhere the data directory is mounted writable): ${paths.join(', ')}; upgrade VictoriaLogs to stop this`,
        this.url,
        paths,
      );
    }
    const left = await this.stillOnDisk(detached);
    if (left.length > 0) {
      const paths = left.map((s) => s.handle);
      throw new SnapshotUndeletableError(
        `VictoriaLogs at ${this.url} cannot delete ${paths.length} snapshot(s) through its API because their partition is not attached ` +
          `(detached with /internal/partition/detach)${this.dataDir === undefined ? ', unless retention dropped the partition and them with it' : ''}: ` +
          `they stay on disk until removed by hand (rm -r in the database container, or anywhere the data directory is mounted writable), ` +
          `or until the partition is attached again and they are deleted with /internal/partition/snapshot/delete: ${paths.join(', ')}`,
        this.url,
        paths,
      );
    }
  }

  /** Those of `snapshots` whose directory is still in the data directory (all of them when it is not known here). */
  private async stillOnDisk(snapshots: readonly Snapshot[]): Promise<Snapshot[]> {
    const dataDir = this.dataDir;
    if (dataDir === undefined) return [...snapshots];
    const present = await Promise.all(
      snapshots.map((s) =>
        lstat(join(dataDir, s.dir)).then(
          () => true,
          (err: NodeJS.ErrnoException) => err.code !== 'ENOENT',
        ),
      ),
    );
    return snapshots.filter((_, i) => present[i]);
  }

  async deleteStale(recorded: readonly Snapshot[]): Promise<Snapshot[]> {
    const listed = new Map((await this.list()).map((s) => [s.name, s]));
    const stale = recorded.flatMap((s) => listed.get(s.name) ?? []);
    // The listing shows attached partitions only: a recorded snapshot whose partition was detached
    // meanwhile is still on disk, and delete() names it as one that stays.
    const unlisted = await this.stillOnDisk(recorded.filter((s) => !listed.has(s.name)));
    await this.delete([...stale, ...unlisted]);
    return stale;
  }

  /** Flush (buffered rows are invisible to queries), then count log entries per partition. */
  async counts(options: CountOptions = {}): Promise<LogsCounts> {
    await this.http.forceFlush(options.signal);
    return { kind: 'logs', ...(await countLogs(this.http, options)) };
  }

  async countStart(signal?: AbortSignal): Promise<Date | undefined> {
    return countStart(await serverRetentionMs(this.http, signal), new Date(), new Date(0));
  }

  version(): Promise<string | undefined> {
    return readVersion(this.http);
  }
}
