/** VictoriaMetrics and VictoriaLogs clients. The engine needs only `openSource` and types.ts. */
import type { Dispatcher } from 'undici';
import { LogsSource } from './logs-source.js';
import { MetricsSource } from './metrics-source.js';
import type { SnapshotSource, SourceKind, SourceOptions } from './types.js';

export type * from './types.js';
export { SnapshotUndeletableError, VictoriaDeleteError, VictoriaError, VictoriaHttpError, VictoriaResponseError, VictoriaUnreachableError } from './errors.js';
export { LogsSource } from './logs-source.js';
export { MetricsSource } from './metrics-source.js';
export { exportCounts } from './vm-counts.js';

/** A client for the given kind of server. */
export function openSource(kind: SourceKind, options: SourceOptions, dispatcher?: Dispatcher): SnapshotSource {
  return kind === 'metrics' ? new MetricsSource(options, dispatcher) : new LogsSource(options, dispatcher);
}
