/**
 * Usage errors (a missing or unknown flag, a flag value that does not parse) exit 2, apart from
 * the 1 of a backup or restore that failed, as the companion's commands and `drill` do, so that
 * scripts can tell "called wrongly" from "did not work".
 */
export class UsageError extends Error {}

/** A UsageError, or node:util parseArgs' own errors (unknown option, missing value, positional). */
export function isUsageError(err: unknown): boolean {
  return err instanceof UsageError || String((err as { code?: unknown })?.code ?? '').startsWith('ERR_PARSE_ARGS_');
}
