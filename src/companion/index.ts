/**
 * `velero-plugin-victoria companion …`: the sidecar in each Victoria pod (docs/companion.md).
 * Dispatches the subcommands and turns errors into exit codes and messages; the work is in
 * hooks.ts, files.ts, tar.ts and serve.ts. The plugin imports protocol.ts directly (loading this
 * module would load every companion command).
 */
import { parseCompanionConfig, DEFAULT_DATA_DIR, DEFAULT_MAX_SNAPSHOT_AGE, DEFAULT_STATE_DIR, DEFAULT_URLS, ENV } from './config.js';
import { ClientGoneError } from './client-stdin.js';
import { countsCommand } from './counts.js';
import { exitCodeOf, usageError } from './errors.js';
import { filesDocument } from './files.js';
import { postHook, preHook } from './hooks.js';
import { parseDurationFlag, splitOwnFlags } from './own-flags.js';
import { COMPANION_EXIT } from './protocol.js';
import { serve } from './serve.js';
import { writeTar } from './tar.js';
import { DEFAULT_VERIFY_TIMEOUT, verifyCommand } from './verify.js';

const COMPANION_USAGE = `velero-plugin-victoria companion: the sidecar in a VictoriaMetrics/VictoriaLogs pod (docs/companion.md)

Usage:
  velero-plugin-victoria companion serve      [FLAGS] [--max-snapshot-age DUR]
                                          main process: idles, deletes recorded snapshots older than DUR
                                          (post hook never ran), exits 0 on SIGTERM/SIGINT
  velero-plugin-victoria companion hook pre   [FLAGS]   Velero pre hook: snapshot and record (one JSON line)
  velero-plugin-victoria companion hook post  [FLAGS]   Velero post hook: delete the recorded snapshots (one JSON line)
  velero-plugin-victoria companion files      [FLAGS]   the recorded snapshots and their files (one JSON document)
  velero-plugin-victoria companion tar        [FLAGS]   stdin line {"tree":"<prefix>","files":[…]} → tar on stdout;
                                          with "cancelOnStdinEnd":true in the line it stops when stdin ends
  velero-plugin-victoria companion counts     [FLAGS] [--timeout DUR]
                                          the database's counts up to five minutes before the recorded
                                          snapshot time, from an hour inside its retention (one JSON line);
                                          the counting query may take DUR (default 5m); a first stdin line
                                          {"cancelOnStdinEnd":true} stops it when stdin ends
  velero-plugin-victoria companion verify     [FLAGS] --expect JSON [--end TIME] [--start TIME] [--timeout DUR] [--count-timeout DUR] [--host H]
                                          after a restore drill (Velero post-restore hook): waits until the
                                          database answers /health (DUR, default ${DEFAULT_VERIFY_TIMEOUT}), compares its counts
                                          (data in [--start, --end), default all; the count may take --count-timeout,
                                          default 5m) with JSON; one JSON line; exit 0 if equal; --host asks the
                                          database at H on the URL's port instead of the URL's host

Flags (each falls back to its environment variable, then to the default):
  --kind metrics|logs          ${ENV.kind} (required)
  --url URL                    ${ENV.url} (${DEFAULT_URLS.metrics} for metrics, ${DEFAULT_URLS.logs} for logs)
  --data-dir DIR               ${ENV['data-dir']} (${DEFAULT_DATA_DIR}): the database's data volume, read-only
  --auth-key K                 ${ENV['auth-key']}: -snapshotAuthKey (VictoriaMetrics) / -partitionManageAuthKey (VictoriaLogs)
  --force-flush-auth-key K     ${ENV['force-flush-auth-key']}: -forceFlushAuthKey
  --state-dir DIR              ${ENV['state-dir']} (${DEFAULT_STATE_DIR}): where the recorded set is kept
  --max-snapshot-age DUR       ${ENV['max-snapshot-age']} (${DEFAULT_MAX_SNAPSHOT_AGE}), serve only: e.g. 6h, 90m, 1h30m
Prefer the environment for keys (from a Secret): flags show in the process list.

Exit codes: 0 ok, 1 failed (verify: counts differ, or no answer in time), 2 bad flags or request,
3 no snapshot recorded (run hook pre first).
`;

/** Runs `companion ARGS…` (ARGS without the word `companion`); returns the exit code. */
export async function companionCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help') || rest.includes('-h')) {
    (command === undefined ? process.stderr : process.stdout).write(COMPANION_USAGE);
    return command === undefined ? COMPANION_EXIT.usage : COMPANION_EXIT.ok;
  }
  if (command === 'hook') return hookCommand(rest[0], rest.slice(1), env);
  if (command === 'verify') return verifyCommand(rest, env);
  try {
    switch (command) {
      case 'serve':
        return await serveCommand(rest, env);
      case 'files': {
        const doc = await filesDocument(parseCompanionConfig(rest, env));
        process.stdout.write(`${JSON.stringify(doc)}\n`);
        return COMPANION_EXIT.ok;
      }
      case 'counts': {
        const { values, rest: shared } = splitOwnFlags(rest, ['timeout']);
        const timeoutMs = values.timeout === undefined ? undefined : parseDurationFlag('--timeout', values.timeout);
        const doc = await countsCommand(parseCompanionConfig(shared, env), timeoutMs, process.stdin);
        process.stdout.write(`${JSON.stringify(doc)}\n`);
        return COMPANION_EXIT.ok;
      }
      case 'tar':
        await writeTar(parseCompanionConfig(rest, env), process.stdin, process.stdout);
        return COMPANION_EXIT.ok;
      default:
        throw usageError(`unknown command ${JSON.stringify(command)}: use serve, hook pre, hook post, files, counts, tar or verify`);
    }
  } catch (err) {
    process.stderr.write(`velero-plugin-victoria companion ${command}: ${(err as Error).message}\n`);
    if (err instanceof ClientGoneError) exitSoon(exitCodeOf(err));
    return exitCodeOf(err);
  }
}

/**
 * The client has gone: a write to its stdout may never complete (a container runtime keeps the
 * pipe open and stops reading it), and a pending write keeps Node running. A process that can end
 * by itself does so within this moment; one held by such a write is ended.
 */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), 1000).unref();
}

/** Hooks answer with one JSON line on stdout also when they fail: Velero logs it, the plugin parses it. */
async function hookCommand(which: string | undefined, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const hook = which === 'pre' || which === 'post' ? which : undefined;
  try {
    if (!hook) throw usageError(`${which === undefined ? 'no hook given' : `unknown hook ${JSON.stringify(which)}`}: use \`companion hook pre\` or \`companion hook post\``);
    const config = parseCompanionConfig(args, env);
    const result = hook === 'pre' ? await preHook(config) : await postHook(config);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return COMPANION_EXIT.ok;
  } catch (err) {
    const message = (err as Error).message;
    process.stdout.write(`${JSON.stringify({ hook: hook ?? which ?? null, error: message })}\n`);
    process.stderr.write(`velero-plugin-victoria companion hook${which === undefined ? '' : ` ${which}`}: ${message}\n`);
    return exitCodeOf(err);
  }
}

async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseCompanionConfig(args, env, { serve: true });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  // As PID 1 of its container Node has no default signal handling: without these, SIGTERM is ignored.
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await serve(config, { signal: stop.signal, log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`) });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return COMPANION_EXIT.ok;
}
