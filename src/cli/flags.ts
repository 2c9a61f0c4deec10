/**
 * node:util's parseArgs, except that a value flag given twice is a usage error. parseArgs keeps
 * the last value silently, so `--dst s3://prod --dst s3://test` (a line pasted after a default)
 * would back up to whichever came last without a word. The message names the flag, never its
 * values (they may be keys).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { durationMs, GO_UNITS_MS } from '../victoria/durations.js';
import { UsageError } from './usage.js';

type Config = ParseArgsConfig & { args: string[] };

export function parseFlags<T extends Config>(config: T): ReturnType<typeof parseArgs<T>> {
  const parsed = parseArgs({ ...config, tokens: true });
  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    const option = config.options?.[token.name];
    if (option?.multiple) continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once: give it once`);
    seen.add(token.name);
  }
  // The same parse with its tokens (which callers do not read) beside the values and positionals.
  return parsed as unknown as ReturnType<typeof parseArgs<T>>;
}

/** A flag's Go-style duration (as kubectl and Velero take them: 30m, 1h30m, 90s) in milliseconds; `examples` are named when it is not one. */
export function durationFlag(flag: string, text: string, examples: string): number {
  const ms = durationMs(text, GO_UNITS_MS);
  if (ms === undefined && /^(?:0+(?:\.0*)?[a-zµ]+)+$/.test(text)) throw new UsageError(`--${flag} ${JSON.stringify(text)}: give a duration above zero, such as ${examples}`);
  if (ms === undefined) throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a duration such as ${examples}`);
  return ms;
}
