/**
 * One executable, several roles (docs/packaging.md): with no subcommand it is the Velero plugin
 * (Velero launches it with only server flags); with a subcommand it is a command-line tool.
 */
import sea from 'node:sea';
import { parseFlags } from '../common/parse-flags.js';
import { abortOpenUploads, allActions, removeStaleCredentials } from '../actions/index.js';
import { formatLine } from '../velero/log.js';
import { NotLaunchedByVelero, PLUGIN_COOKIE, runPluginProcess } from '../velero/process.js';
import pkg from '../../package.json' with { type: 'json' };
import { inCliTerms } from './advice.js';
import { installPlugin } from './install-plugin.js';
import { isUsageError } from '../common/usage-error.js';
import { redact } from '../common/redact.js';
import { failureLine } from './json-failure.js';
import { storeRetries } from './store-retries.js';

/** Every command's synopsis, as in its own --help (a unit test keeps them the same). */
export const USAGE = `velero-plugin-victoria ${pkg.version}: Velero plugin for VictoriaMetrics and VictoriaLogs hostPath data

Usage:
  velero-plugin-victoria                 run as a Velero plugin (Velero starts it; needs VELERO_PLUGIN=hello)
  velero-plugin-victoria backup  --kind metrics|logs --url URL --data-dir DIR --dst ROOT [--name NAME] [--auth-key K]
                                 [--force-flush-auth-key K] [--full] [--no-counts] [--max-bytes-per-second R] [--json]
  velero-plugin-victoria restore --src ROOT/NAME --data-dir DIR [--replace] [--no-direct-io] [--max-bytes-per-second R]
                                 [--chown UID[:GID]] [--json]
  velero-plugin-victoria restore --plan-url URL --plan-sha256 HEX --data-dir DIR [--replace] [--no-direct-io]
                                 [--max-bytes-per-second R] [--chown UID[:GID]] [--json]
                                         the same from a restore plan (the Velero restore's init container)
  velero-plugin-victoria list    --dst ROOT [--json]
  velero-plugin-victoria verify  --src ROOT/NAME [--json]
                                         ROOT is s3://bucket/prefix or file:///dir; run COMMAND --help for details
  velero-plugin-victoria drill   [--backup NAME | --schedule NAME] --namespace NS [--drill-namespace NS-drill]
                                 [--velero-namespace velero] [--timeout 30m] [--cleanup] [--kubeconfig F] [--context C] [--json]
                                         restore a Velero backup into a drill namespace, wait, report
                                         (exit 0 passed, 1 failed); run drill --help for details
  velero-plugin-victoria prune   --location ROOT [--min-age 24h] [--delete] [--allow-no-velero-backups] [--json]
                                         list (and with --delete remove) backup folders of the plugin
                                         that Velero no longer has; ROOT is the location's s3://bucket/prefix
  velero-plugin-victoria companion serve|hook pre|hook post|files|tar|counts|verify
                                         the sidecar in a Victoria pod: Velero hooks, file listing, tar
                                         streaming, counts, a drill's check; run companion --help for details
  velero-plugin-victoria demo    [--components DIR] [--keep]
                                         back up and restore a local VictoriaMetrics and VictoriaLogs (file://)
  velero-plugin-victoria install-plugin [--target DIR]
                                         copy the executable and its lib/ into DIR (default /target);
                                         the image's default command, for Velero's plugin init container
  velero-plugin-victoria version         print the version
  velero-plugin-victoria help            print this help
`;

const wantsHelp = (args: string[]): boolean => args.includes('--help') || args.includes('-h');
const usage = (text: string): number => {
  process.stdout.write(`${text}\n`);
  return 0;
};

interface Command {
  usage: string;
  run(args: string[]): Promise<number>;
}

/**
 * The commands load their modules (engine, S3 client) only when chosen: the plugin process, which
 * Velero starts for every backup, restore and 10 s operation poll, never needs them to start.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  backup: () => import('./commands/backup.js').then((m) => ({ usage: m.BACKUP_USAGE, run: m.backupCommand })),
  restore: () => import('./commands/restore.js').then((m) => ({ usage: m.RESTORE_USAGE, run: m.restoreCommand })),
  list: () => import('./commands/list.js').then((m) => ({ usage: m.LIST_USAGE, run: m.listCommand })),
  verify: () => import('./commands/verify.js').then((m) => ({ usage: m.VERIFY_USAGE, run: m.verifyCommand })),
  prune: () => import('./commands/prune.js').then((m) => ({ usage: m.PRUNE_USAGE, run: (args: string[]) => m.pruneCommand(args) })),
  drill: () => import('./commands/drill.js').then((m) => ({ usage: m.DRILL_USAGE, run: (args: string[]) => m.drillCommand(args) })),
  demo: () => import('./commands/demo.js').then((m) => ({ usage: m.DEMO_USAGE, run: m.demoCommand })),
  'install-plugin': async () => ({ usage: INSTALL_PLUGIN_USAGE, run: async (args: string[]) => installPluginCommand(args) }),
};

const INSTALL_PLUGIN_USAGE = `Usage: velero-plugin-victoria install-plugin [--target DIR]

Copies this executable and its lib/ into DIR (default /target): the image's default command, for
Velero's plugin init container, and a way to get the CLI out of the image.`;

function installPluginCommand(args: string[]): number {
  const { values } = parseFlags({ args, options: { target: { type: 'string', default: '/target' } } });
  if (!sea.isSea()) throw new Error('install-plugin copies the single executable; build it first (npm run build)');
  for (const file of installPlugin(process.execPath, values.target)) process.stdout.write(`installed ${file}\n`);
  return 0;
}

/** The first argument, unless it is a flag: started by hand without one, this is the plugin. */
function subcommandOf(args: string[]): string | undefined {
  const first = args[0];
  return first === undefined || first.startsWith('-') ? undefined : first;
}

async function servePlugin(args: string[]): Promise<number | undefined> {
  try {
    await runPluginProcess({ args, env: process.env, command: process.execPath, actions: allActions(), beforeExit: abortOpenUploads });
    // After the handshake, so as not to delay it; nothing depends on it.
    removeStaleCredentials().catch(() => undefined);
    return undefined; // keep serving until Velero shuts us down
  } catch (err) {
    if (err instanceof NotLaunchedByVelero) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    // Launched by Velero, which shows a plugin's stderr only as JSON lines (a plain line is
    // logged at debug): a start that fails (no socket, a missing asset) must say why as one.
    process.stderr.write(`${formatLine('error', `velero-plugin-victoria could not start: ${err instanceof Error ? err.message : String(err)}`)}\n`);
    return 1;
  }
}

export async function main(args: string[]): Promise<number | undefined> {
  // Velero appends its own server's arguments after `velero server` as they were given, whatever
  // they are: `velero --features=X server` passes `server`, and a `-h` among them would put the
  // usage on stdout, where Velero expects the handshake and fails to start. Started by Velero
  // (go-plugin sets its cookie), this is the plugin whatever the arguments.
  if (process.env[PLUGIN_COOKIE.key] === PLUGIN_COOKIE.value) return servePlugin(args);
  const sub = subcommandOf(args);
  switch (sub) {
    case undefined:
      if (args.includes('--help') || args.includes('-h')) {
        process.stdout.write(USAGE);
        return 0;
      }
      if (args.includes('--version')) {
        process.stdout.write(`${pkg.version}\n`);
        return 0;
      }
      return servePlugin(args);
    case 'version':
      process.stdout.write(`${pkg.version}${sea.isSea() ? '' : ' (development build)'}\n`);
      return 0;
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      if (Object.hasOwn(COMMANDS, sub)) return runCommand(sub, args);
      process.stderr.write(`velero-plugin-victoria: unknown command "${sub}"\n\n${USAGE}`);
      return 2;
  }
}

async function runCommand(sub: string, args: string[]): Promise<number> {
  const command = await COMMANDS[sub]!();
  if (wantsHelp(args)) return usage(command.usage);
  try {
    return await command.run(args.slice(1));
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    if (!isUsageError(err)) {
      err.message = inCliTerms(err.message);
      // The same text as the line src/main.ts writes to stderr.
      const line = failureLine(err, redact(err.message));
      if (line) process.stdout.write(line);
      throw err;
    }
    // parseArgs' own errors (an unknown flag, a missing value) do not say where the flags are listed.
    const hint = err.message.includes('\n') ? '' : ` (velero-plugin-victoria ${sub} --help lists the flags)`;
    process.stderr.write(`velero-plugin-victoria ${sub}: ${err.message}${hint}\n`);
    return 2;
  } finally {
    // Before a failure's message, which src/main.ts prints once this returns.
    storeRetries.end();
  }
}
