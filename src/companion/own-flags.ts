/**
 * A companion subcommand's own flags (`verify --expect …`, `counts --timeout …`) beside the shared
 * ones (`--kind`, `--url`, …), which config.ts parses strictly: this takes the own flags out and
 * parses them, and hands the rest on.
 */
import { parseFlags } from '../common/parse-flags.js';
import { parseDuration } from './config.js';
import { usageError } from './errors.js';

/** A duration flag's value (`--timeout 30m`) in ms; a bad one is a usage error naming the flag. */
export function parseDurationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw usageError(`${flag}: ${(err as Error).message}`);
  }
}

export function splitOwnFlags<K extends string>(args: string[], names: readonly K[]): { values: Partial<Record<K, string>>; rest: string[] } {
  const own = new Set(names.map((n) => `--${n}`));
  const mine: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const flag = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    if (!own.has(flag)) {
      rest.push(arg);
      continue;
    }
    mine.push(arg);
    if (!arg.includes('=') && i + 1 < args.length) mine.push(args[++i]!);
  }
  try {
    const { values } = parseFlags({
      args: mine,
      options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    });
    return { values: values as Partial<Record<K, string>>, rest };
  } catch (err) {
    throw usageError((err as Error).message);
  }
}
