/**
 * `companion counts`: what the database holds before the recorded snapshot time (less a margin for
 * data that arrives late, flat-counts.ts), for the manifest
 * (a restore drill's `companion verify` compares the restored database with it). The plugin runs it
 * while the files upload rather than the pre hook before: the count reads every sample, seconds of
 * the database's CPU per GiB, and a slow or refused count must neither hold up the hook window nor
 * fail the backup. The count starts inside the database's retention (victoria/retention.ts), so
 * that a drill can count the same range of the restored copy.
 */
import type { Readable } from 'node:stream';
import { countForBackup } from '../victoria/flat-counts.js';
import type { SnapshotSource } from '../victoria/types.js';
import { ClientStdin } from './client-stdin.js';
import { openConfiguredSource, type CompanionConfig } from './config.js';
import { asksCancelOnStdinEnd, type CompanionCounts } from './protocol.js';
import { requireRecord } from './state.js';

/** The plugin's line is a few bytes; anything longer is not it. */
const MAX_LINE_BYTES = 4096;

export interface CountOptions {
  /** How long the counting query may take (`--timeout`; the plugin passes its countTimeoutSeconds). */
  timeoutMs?: number;
  /** Ends the counting query (its connection, which the database takes as a cancelled query). */
  signal?: AbortSignal;
}

export async function countsDocument(config: CompanionConfig, options: CountOptions = {}, source: SnapshotSource = openConfiguredSource(config)): Promise<CompanionCounts> {
  const record = await requireRecord(config.stateDir, config.kind);
  const started = performance.now();
  const counted = await countForBackup(source, new Date(record.createdAt), record.snapshots, options.timeoutMs, options.signal);
  return { ...counted, durationSeconds: Math.round(performance.now() - started) / 1000 };
}

/**
 * `counts` as a command: stops counting when `stdin` ends if its first line asks for that
 * (client-stdin.ts). The line is read beside the count, not before it: older plugins open no stdin,
 * and a stdin left open with nothing on it must not hold the count up.
 */
export async function countsCommand(config: CompanionConfig, timeoutMs: number | undefined, stdin: Readable): Promise<CompanionCounts> {
  const client = new ClientStdin(stdin);
  // A line too long to be the request is no request either: the count goes on.
  client.firstLine(MAX_LINE_BYTES, () => new Error('not a request')).then(
    (line) => (line !== undefined && asksCancelOnStdinEnd(line) ? client.cancelOnEnd() : client.release()),
    () => client.release(),
  );
  try {
    return await countsDocument(config, { ...(timeoutMs === undefined ? {} : { timeoutMs }), signal: client.signal });
  } finally {
    client.release();
  }
}
