/**
 * node:util's parseArgs, except that a value flag given twice is a usage error. parseArgs keeps
 * the last value silently, so `--dst s3://prod --dst s3://test` (a line pasted after a default)
 * would back up to whichever came last without a word. The message names the flag, never its
 * values (they may be keys).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage.js';

type Config = ParseArgsConfig & { args: string[] };

export function parseFlags<T extends Config>(config: T): ReturnType<typeof parseArgs<T>> {
  const { tokens } = parseArgs({ ...config, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens ?? []) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    const option = config.options?.[token.name];
    if (option?.multiple) continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once: give it once`);
    seen.add(token.name);
  }
  return parseArgs(config);
}
