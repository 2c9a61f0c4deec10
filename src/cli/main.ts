/**
 * One executable, several roles (design.md): with no subcommand it is the Velero plugin (Velero
 * launches it with only server flags); with a subcommand it is a command-line tool.
 */
import sea from 'node:sea';
import { parseArgs } from 'node:util';
import { allActions } from '../actions/index.js';
import { NotLaunchedByVelero, runPluginProcess } from '../velero/process.js';
import pkg from '../../package.json' with { type: 'json' };
import { BACKUP_USAGE, backupCommand } from './commands/backup.js';
import { DEMO_USAGE, demoCommand } from './commands/demo.js';
import { LIST_USAGE, listCommand } from './commands/list.js';
import { RESTORE_USAGE, restoreCommand } from './commands/restore.js';
import { VERIFY_USAGE, verifyCommand } from './commands/verify.js';
import { installPlugin } from './install-plugin.js';

const USAGE = `velero-plugin-victoria ${pkg.version}: Velero plugin for VictoriaMetrics and VictoriaLogs hostPath data

Usage:
  velero-plugin-victoria                 run as a Velero plugin (Velero starts it; needs VELERO_PLUGIN=hello)
  velero-plugin-victoria backup  --kind metrics|logs --url URL --data-dir DIR --dst ROOT [--name NAME] [--auth-key K] [--json]
  velero-plugin-victoria restore --src ROOT/NAME --data-dir DIR [--replace] [--json]
  velero-plugin-victoria list    --dst ROOT [--json]
  velero-plugin-victoria verify  --src ROOT/NAME [--json]
                                         ROOT is s3://bucket/prefix or file:///dir; run COMMAND --help for details
  velero-plugin-victoria companion serve|hook pre|hook post|files|tar
                                         the sidecar in a Victoria pod: Velero hooks, file listing, tar
                                         streaming; run companion --help for details
  velero-plugin-victoria demo            back up and restore a local VictoriaMetrics and VictoriaLogs (file://)
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

/** Velero's arguments are only flags; anything else is a subcommand. */
function subcommandOf(args: string[]): string | undefined {
  const first = args[0];
  return first === undefined || first.startsWith('-') ? undefined : first;
}

export async function main(args: string[]): Promise<number | undefined> {
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
      try {
        await runPluginProcess({ args, env: process.env, command: process.execPath, actions: () => allActions() });
        return undefined; // keep serving until Velero shuts us down
      } catch (err) {
        if (err instanceof NotLaunchedByVelero) {
          process.stderr.write(`${err.message}\n`);
          return 1;
        }
        throw err;
      }
    case 'backup':
      return wantsHelp(args) ? usage(BACKUP_USAGE) : backupCommand(args.slice(1));
    case 'restore':
      return wantsHelp(args) ? usage(RESTORE_USAGE) : restoreCommand(args.slice(1));
    case 'list':
      return wantsHelp(args) ? usage(LIST_USAGE) : listCommand(args.slice(1));
    case 'verify':
      return wantsHelp(args) ? usage(VERIFY_USAGE) : verifyCommand(args.slice(1));
    case 'demo':
      return wantsHelp(args) ? usage(DEMO_USAGE) : demoCommand(args.slice(1));
    case 'install-plugin': {
      const { values } = parseArgs({ args: args.slice(1), options: { target: { type: 'string', default: '/target' } } });
      if (!sea.isSea()) throw new Error('install-plugin copies the single executable; build it first (npm run build)');
      for (const file of installPlugin(process.execPath, values.target)) process.stdout.write(`installed ${file}\n`);
      return 0;
    }
    case 'version':
      process.stdout.write(`${pkg.version}${sea.isSea() ? '' : ' (development build)'}\n`);
      return 0;
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`velero-plugin-victoria: unknown command "${sub}"\n\n${USAGE}`);
      return 2;
  }
}
