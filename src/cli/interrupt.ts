/**
 * Ctrl-C (SIGINT) or a `kill` (SIGTERM) of a CLI command that holds something outside this process,
 * such as a database snapshot, which no one else would delete: the first signal runs the clean-up
 * and then exits as the signal would have (128 + its number); a second one exits at once.
 */
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Installs the handlers; the returned function removes them. */
export function onInterrupt(cleanup: (signal: NodeJS.Signals) => Promise<void>): () => void {
  let cleaning = false;
  const handler = (signal: NodeJS.Signals): void => {
    const code = 128 + constants.signals[signal];
    if (cleaning) process.exit(code);
    cleaning = true;
    cleanup(signal)
      .catch((err: unknown) => process.stderr.write(`${signal}: clean-up failed: ${(err as Error).message}\n`))
      .finally(() => process.exit(code));
  };
  for (const s of SIGNALS) process.on(s, handler);
  return () => {
    for (const s of SIGNALS) process.off(s, handler);
  };
}
