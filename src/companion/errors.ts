/** An error that decides the companion's exit code (protocol.ts COMPANION_EXIT). */
import { COMPANION_EXIT, NO_RECORD_MESSAGE } from './protocol.js';

export class CompanionError extends Error {
  override readonly name = 'CompanionError';
  constructor(
    message: string,
    readonly exitCode: number = COMPANION_EXIT.failed,
  ) {
    super(message);
  }
}

/** Bad flags, configuration or request: exit 2. */
export const usageError = (message: string): CompanionError => new CompanionError(message, COMPANION_EXIT.usage);

/** Nothing recorded: exit 3, with the message the plugin recognises. */
export const noRecordError = (): CompanionError => new CompanionError(NO_RECORD_MESSAGE, COMPANION_EXIT.noRecord);

/** The exit code for any error: ours carry one, everything else is a failure. */
export function exitCodeOf(err: unknown): number {
  return err instanceof CompanionError ? err.exitCode : COMPANION_EXIT.failed;
}
