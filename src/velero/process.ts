/**
 * Everything that makes this process a well-behaved go-plugin child of Velero: the magic cookie,
 * lenient parsing of the Velero server flags it is launched with, stdout kept clean for the
 * handshake, every stray console or grpc-js message turned into a safe JSON log line, and uncaught
 * errors logged before exiting.
 */
import { parseArgs } from 'node:util';
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { createLogger, levelFromVelero, type Logger } from './log.js';
import { serve, type RunningServer } from './server.js';
import type { ItemAction } from './types.js';

/** The environment variable go-plugin sets for the plugins Velero starts (and its value). */
export const PLUGIN_COOKIE = { key: 'VELERO_PLUGIN', value: 'hello' } as const;
const APP_PROTOCOL_VERSION = '2';

export class NotLaunchedByVelero extends Error {}

/**
 * Velero passes every flag of `velero server` through (`--features=…`, `--uploader-type=…`, …).
 * Only the log level matters here; everything else, known or not, is accepted and ignored.
 */
export function parseVeleroFlags(args: string[]): { logLevel?: string } {
  const { values } = parseArgs({
    args,
    options: { 'log-level': { type: 'string' } },
    strict: false,
    allowPositionals: true,
  });
  const logLevel = typeof values['log-level'] === 'string' ? values['log-level'] : undefined;
  return { logLevel };
}

/** Refuse to serve unless started by a go-plugin host speaking Velero's protocol. */
export function checkLaunchedByVelero(env: NodeJS.ProcessEnv): void {
  if (env[PLUGIN_COOKIE.key] !== PLUGIN_COOKIE.value) {
    throw new NotLaunchedByVelero(
      'velero-plugin-victoria: this is a Velero plugin; Velero starts it itself (VELERO_PLUGIN is not set).\n' +
        'Install it with `velero plugin add <image>` (see README.md), or run `velero-plugin-victoria help` for the command-line tools.',
    );
  }
  const versions = env.PLUGIN_PROTOCOL_VERSIONS;
  if (versions && !versions.split(',').map((v) => v.trim()).includes(APP_PROTOCOL_VERSION)) {
    throw new NotLaunchedByVelero(
      `velero-plugin-victoria: the host offers plugin protocol versions ${versions}, but this plugin speaks version ${APP_PROTOCOL_VERSION} (Velero v1.14 and later).`,
    );
  }
}

/** Route console.* and grpc-js diagnostics into the JSON logger: stdout belongs to the handshake. */
export function captureStrayOutput(log: Logger): void {
  const to = (emit: (m: string) => void) => (...args: unknown[]) => emit(format(...args));
  console.log = to((m) => log.debug(m));
  console.info = to((m) => log.info(m));
  console.debug = to((m) => log.debug(m));
  // Only libraries write to the console (the AWS SDK's "socket usage at capacity", its credential
  // chain's notes): their warnings and errors are not the backup's. At warn each would count against
  // the backup and fire the plugin-warnings alert (schedules/alerts.yaml), at error fail it; at info
  // they still show in `velero backup logs`.
  console.warn = to((m) => log.info(m));
  console.error = to((m) => log.info(m));
  grpc.setLogger({ error: to((m) => log.debug(`grpc: ${m}`)) } as Partial<Console>);
  // Node's own warnings (deprecations, MaxListenersExceeded) are ours to fix, not the operator's:
  // at warn level Velero would count each one against the backup.
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.debug(`node: ${w.name}: ${w.message}`));
}

export interface PluginProcessOptions {
  args: string[];
  env: NodeJS.ProcessEnv;
  command: string;
  actions: ItemAction[];
  /**
   * What must end before the process exits on Velero's Shutdown or SIGTERM (the actions' open
   * multipart uploads); given EXIT_GRACE_MS, as Velero kills a plugin 2 s after Shutdown.
   */
  beforeExit?: () => Promise<unknown>;
}

/** How long beforeExit may take: within go-plugin's 2 s between Shutdown and its kill. */
const EXIT_GRACE_MS = 1500;

export async function runPluginProcess(options: PluginProcessOptions): Promise<RunningServer> {
  checkLaunchedByVelero(options.env);
  const flags = parseVeleroFlags(options.args);
  const log = createLogger({ level: levelFromVelero(flags.logLevel) });
  captureStrayOutput(log);

  // The cause goes into `error`, which Velero's log counter adds to the message that
  // `velero backup describe` lists; the stack, many lines, only into `velero backup logs`.
  const crashed = (what: string, err: unknown): void => {
    // Anything can be thrown, null included: the handler must not fail on it.
    log.error(`velero-plugin-victoria ${what}`, { error: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
    process.exit(1);
  };
  process.on('uncaughtException', (err) => crashed('crashed', err));
  process.on('unhandledRejection', (reason) => crashed('crashed on an unhandled rejection', reason));
  // Like Go plugins: Ctrl-C on the Velero server is for the host; it stops us through Shutdown or a kill.
  process.on('SIGINT', () => undefined);
  const exit = (): void => {
    const grace = new Promise((resolve) => setTimeout(resolve, EXIT_GRACE_MS).unref());
    void Promise.race([options.beforeExit?.().catch((err: unknown) => log.debug(`before exit: ${String(err)}`)), grace]).finally(() => process.exit(0));
  };
  process.on('SIGTERM', exit);

  return serve({ actions: options.actions, command: options.command, log, onShutdown: exit });
}
