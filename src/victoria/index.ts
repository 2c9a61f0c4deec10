/** VictoriaMetrics and VictoriaLogs clients: the CLI and the companion open one with `openSource`. */
import type { Dispatcher } from 'undici';
import { LogsSource } from './logs-source.js';
import { MetricsSource } from './metrics-source.js';
import type { SnapshotSource, SourceKind, SourceOptions } from './types.js';

export type * from './types.js';
export { LogsSource } from './logs-source.js';
export { MetricsSource } from './metrics-source.js';

/** A client for the given kind of server. */
export function openSource(kind: SourceKind, options: SourceOptions, dispatcher?: Dispatcher): SnapshotSource {
  return kind === 'metrics' ? new MetricsSource(options, dispatcher) : new LogsSource(options, dispatcher);
}
