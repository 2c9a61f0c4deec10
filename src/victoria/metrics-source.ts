/** VictoriaMetrics single node as a SnapshotSource (types.ts). */
import type { Dispatcher } from 'undici';
import { deleteEach } from './delete-all.js';
import { HttpClient } from './http.js';
import type { CountOptions, MetricsCounts, Snapshot, SnapshotSource, SourceOptions } from './types.js';
import { readVersion } from './version.js';
import { countStart, serverRetentionMs } from './retention.js';
import { COUNT_FLOOR, countMetrics } from './vm-counts.js';
import { VmSnapshotApi, vmSnapshot } from './vm-snapshots.js';

export class MetricsSource implements SnapshotSource {
  readonly kind = 'metrics' as const;
  readonly url: string;
  readonly http: HttpClient;
  readonly snapshots: VmSnapshotApi;

  constructor(options: SourceOptions, dispatcher?: Dispatcher) {
    this.http = new HttpClient('VictoriaMetrics', options, dispatcher);
    this.url = this.http.baseUrl;
    this.snapshots = new VmSnapshotApi(this.http);
  }

  /**
   * One snapshot of everything. No force_flush first: snapshot creation itself flushes pending
   * rows and in-memory parts, and the flush endpoint may have a key of its own.
   */
  async create(): Promise<Snapshot[]> {
    return [vmSnapshot(await this.snapshots.create())];
  }

  async list(): Promise<Snapshot[]> {
    return (await this.snapshots.list()).map(vmSnapshot);
  }

  async delete(snapshots: readonly Snapshot[]): Promise<void> {
    await deleteEach(snapshots, (s) => this.snapshots.delete(s.handle), 'VictoriaMetrics', this.url);
  }

  async deleteStale(recorded: readonly Snapshot[]): Promise<Snapshot[]> {
    const wanted = new Set(recorded.map((s) => s.name));
    const stale = (await this.list()).filter((s) => wanted.has(s.name));
    await this.delete(stale);
    return stale;
  }

  /** Flush (so just-ingested samples are searchable), then count series and samples. */
  async counts(options: CountOptions = {}): Promise<MetricsCounts> {
    await this.http.forceFlush(options.signal);
    return { kind: 'metrics', ...(await countMetrics(this.http, options)) };
  }

  async countStart(signal?: AbortSignal): Promise<Date | undefined> {
    return countStart(await serverRetentionMs(this.http, signal), new Date(), COUNT_FLOOR);
  }

  version(): Promise<string | undefined> {
    return readVersion(this.http);
  }
}
