import { durationMs, GO_UNITS_MS } from '../victoria/durations.js';
import { UsageError } from '../common/usage-error.js';

/** A flag's Go-style duration (as kubectl and Velero take them: 30m, 1h30m, 90s) in milliseconds; `examples` are named when it is not one. */
export function durationFlag(flag: string, text: string, examples: string): number {
  const ms = durationMs(text, GO_UNITS_MS);
  if (ms === undefined && /^(?:0+(?:\.0*)?[a-zµ]+)+$/.test(text)) throw new UsageError(`--${flag} ${JSON.stringify(text)}: give a duration above zero, such as ${examples}`);
  if (ms === undefined) throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a duration such as ${examples}`);
  return ms;
}
