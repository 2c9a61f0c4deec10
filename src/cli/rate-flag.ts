/** `--max-bytes-per-second`, shared by backup (uploads) and restore (downloads), as vmbackup and vmrestore spell it. */
import type { ParseArgsConfig } from 'node:util';
import { parseBytesPerSecond } from '../engine/rate-limit.js';
import { UsageError } from '../common/usage-error.js';

export const RATE_FLAG = {
  'max-bytes-per-second': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** The flag's value in bytes per second; undefined when absent or 0 (no limit). */
export function maxBytesPerSecond(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const rate = parseBytesPerSecond(value);
  if (typeof rate === 'string') throw new UsageError(`--max-bytes-per-second ${JSON.stringify(value)}: give ${rate}`);
  return rate || undefined;
}
