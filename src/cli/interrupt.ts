/**
 * Ctrl-C (SIGINT) or a `kill` (SIGTERM) of a CLI command that holds something outside this process,
 * such as a database snapshot or a database server (the demo's), which no one else would remove:
 * the first signal runs the clean-ups and then exits as the signal would have (128 + its number);
 * a second one exits at once.
 */
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

type Cleanup = (signal: NodeJS.Signals) => Promise<void>;

/** In the order registered; run the other way round, innermost first (see handler). */
const cleanups: Cleanup[] = [];
let cleaning = false;

function handler(signal: NodeJS.Signals): void {
  const code = 128 + constants.signals[signal];
  if (cleaning) process.exit(code);
  cleaning = true;
  void (async () => {
    // The latest first, one after the other: a backup deletes its snapshots through the database
    // before the demo that started that database stops it.
    for (const cleanup of [...cleanups].reverse()) {
      await cleanup(signal).catch((err: unknown) => process.stderr.write(`${signal}: clean-up failed: ${(err as Error).message}\n`));
    }
    process.exit(code);
  })();
}

/** Registers a clean-up (and the signal handlers with the first one); the returned function removes it. */
export function onInterrupt(cleanup: Cleanup): () => void {
  if (cleanups.length === 0) for (const s of SIGNALS) process.on(s, handler);
  cleanups.push(cleanup);
  return () => {
    const at = cleanups.indexOf(cleanup);
    if (at < 0) return;
    cleanups.splice(at, 1);
    if (cleanups.length === 0) for (const s of SIGNALS) process.off(s, handler);
  };
}
