/**
 * node:util's parseArgs, except that a value flag given twice is a usage error. parseArgs keeps
 * the last value silently, so `--dst s3://prod --dst s3://test` (a line pasted after a default)
 * would back up to whichever came last without a word. The message names the flag, never its
 * values (they may be keys). Shared by the CLI and the companion's subcommands.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage-error.js';

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
