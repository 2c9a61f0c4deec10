/**
 * With --json, a command that fails prints one JSON object on stdout too: a script or a Job that
 * parses stdout learns what failed and why instead of reading nothing. The command says what it
 * knows (the backup, the data directory) by running its work in jsonOnFailure; runCommand
 * (main.ts) prints the object once the message is in flag terms and redacted, so that `error` is
 * the text stderr shows. Usage errors (exit 2) print nothing on stdout: the flags were wrong, and
 * nothing ran to report on.
 * Imports only the usage check: cli/main.ts loads this for every command, in the plugin process too.
 */
import { isUsageError } from '../common/usage-error.js';

// Symbol.for: one key however often this module is loaded (tests load it through both module systems).
const KNOWN = Symbol.for('velero-plugin-victoria: what a failed command knows, for its --json object');
type Failed = Error & { [KNOWN]?: Record<string, unknown> };

/**
 * Runs `work`; when it fails and `json` is set, the error carries `known()` (evaluated then, so it
 * names what was learnt meanwhile, such as a restore plan's backup) for failureLine.
 */
export async function jsonOnFailure<T>(json: boolean, known: () => Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (json && err instanceof Error && !isUsageError(err)) (err as Failed)[KNOWN] ??= known();
    throw err;
  }
}

/** The object's line for `err`, `message` as its `error`; undefined unless its command ran with --json. */
export function failureLine(err: Error, message: string): string | undefined {
  const known = (err as Failed)[KNOWN];
  return known && `${JSON.stringify({ ...known, error: message })}\n`;
}
