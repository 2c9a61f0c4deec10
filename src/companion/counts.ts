/**
 * `companion counts`: what the database holds before the recorded snapshot time (less a margin for
 * data that arrives late, flat-counts.ts), for the manifest
 * (a restore drill's `companion verify` compares the restored database with it). The plugin runs it
 * while the files upload rather than the pre hook before: the count reads every sample, seconds of
 * the database's CPU per GiB, and a slow or refused count must neither hold up the hook window nor
 * fail the backup. The count starts inside the database's retention (victoria/retention.ts), so
 * that a drill can count the same range of the restored copy.
 */
import { countForBackup } from '../victoria/flat-counts.js';
import type { SnapshotSource } from '../victoria/types.js';
import { openConfiguredSource, type CompanionConfig } from './config.js';
import type { CompanionCounts } from './protocol.js';
import { requireRecord } from './state.js';

/** `timeoutMs`: how long the counting query may take (`--timeout`; the plugin passes its countTimeoutSeconds). */
export async function countsDocument(config: CompanionConfig, timeoutMs?: number, source: SnapshotSource = openConfiguredSource(config)): Promise<CompanionCounts> {
  const record = await requireRecord(config.stateDir, config.kind);
  const started = performance.now();
  const counted = await countForBackup(source, new Date(record.createdAt), record.snapshots, timeoutMs);
  return { ...counted, durationSeconds: Math.round(performance.now() - started) / 1000 };
}
