import { scanLeftovers, VELERO_BACKUPS, type BackupFolder } from '../../actions/leftovers.js';
import { PLUGIN_FOLDER } from '../../actions/record.js';
import { deleteBackup } from '../../engine/delete.js';
import { durationFlag } from '../duration-flag.js';
import { parseFlags } from '../../common/parse-flags.js';
import { formatBytes } from '../progress.js';
import { checkStoreRoot, openStoreFromFlags, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { UsageError } from '../../common/usage-error.js';

export const PRUNE_USAGE = `velero-plugin-victoria prune --location ROOT [--min-age 24h] [--delete] [--allow-no-velero-backups] [--json]

Finds the plugin's backup folders that Velero no longer knows and, with --delete, removes them.
ROOT is a BackupStorageLocation's bucket and prefix (s3://bucket/prefix, or s3://bucket for a
location without a prefix: the folder that holds Velero's backups/ and the plugin's plugins/). A folder plugins/victoria/NS/WORKLOAD/BACKUP/ is left
over when ROOT/backups/BACKUP/ is gone: Velero deleted the backup without the plugin's delete
action (its tarball never reached the bucket) or the delete action failed. Velero's own folders
decide, not a cluster's Backup objects, so another cluster's backups in a shared location are safe.

  --min-age DURATION   leave folders written to more recently than this (a backup may still be
                       running: Velero uploads its own files at the end); default 24h
  --delete             remove the left-over folders (complete markers first); without it, only list
  --allow-no-velero-backups
                       accept a location whose backups/ holds no backup (every one deleted): then
                       every plugin folder is left over; without it such a location is refused
  --json               print one JSON object (on a failed removal too, with "failed")

${STORE_USAGE}`;

export interface PruneOptions {
  /** The current time (tests move it forward). */
  now?: () => Date;
  stdout?: (text: string) => void;
}

const row = (f: BackupFolder): string =>
  `${f.namespace}/${f.workload}/${f.backup}  ${f.objects} objects  ${formatBytes(f.bytes)}  last written ${f.lastModified?.toISOString() ?? 'unknown'}`;

/**
 * A folder of the location as a store root: the location's bucket and prefix (perhaps none) and
 * the folder below it. A file:// location must be one a store could open itself (not `/`).
 */
function below(location: string, folder: string): string {
  // Checked as typed: an error about the folder below it would name a path the user never wrote.
  if (!/^(s3|file):\/\//.test(location)) throw new UsageError(`--location ${JSON.stringify(location)} is not a storage location: expected s3://bucket[/prefix] or file:///abs/dir`);
  if (location.startsWith('file:')) checkStoreRoot(location);
  return `${location.replace(/\/+$/, '')}/${folder}`;
}

export async function pruneCommand(args: string[], options: PruneOptions = {}): Promise<number> {
  const stdout = options.stdout ?? ((text: string) => void process.stdout.write(text));
  const { values } = parseFlags({
    args,
    options: {
      location: { type: 'string' },
      'min-age': { type: 'string', default: '24h' },
      delete: { type: 'boolean' },
      'allow-no-velero-backups': { type: 'boolean' },
      json: { type: 'boolean' },
      ...STORE_FLAGS,
    },
  });
  if (!values.location) throw new UsageError(`--location is required\n\n${PRUNE_USAGE}`);
  const minAgeMs = durationFlag('min-age', values['min-age'], '24h, 90m or 7d');
  const stores = { velero: openStoreFromFlags(below(values.location, VELERO_BACKUPS), values), plugin: openStoreFromFlags(below(values.location, PLUGIN_FOLDER), values) };
  const scan = await scanLeftovers(stores, {
    minAgeMs,
    allowNoVeleroBackups: values['allow-no-velero-backups'] === true,
    ...(options.now ? { now: options.now() } : {}),
  });
  let deleted = 0;
  let failed: { folder: string; error: string } | undefined;
  if (values.delete) {
    // One at a time: a deletion that fails half-way leaves that folder without its complete
    // markers (refused by every reader) and the others untouched, and the report says which.
    for (const f of scan.leftovers) {
      try {
        await deleteBackup(stores.plugin, `${f.namespace}/${f.workload}/${f.backup}`);
      } catch (err) {
        failed = { folder: f.folder, error: (err as Error).message };
        break;
      }
      deleted++;
    }
  }
  const bytes = scan.leftovers.reduce((n, f) => n + f.bytes, 0);
  if (values.json) {
    stdout(`${JSON.stringify({ location: values.location.replace(/\/+$/, ''), leftovers: scan.leftovers, recent: scan.recent, known: scan.known, bytes, deleted, ...(failed ? { failed } : {}) })}\n`);
    return failed ? 1 : 0;
  }
  for (const [i, f] of scan.leftovers.entries()) {
    const state = !values.delete ? 'left over' : i < deleted ? 'removed' : i === deleted && failed ? `NOT removed (${failed.error})` : 'not tried';
    stdout(`${state}  ${row(f)}\n`);
  }
  for (const f of scan.recent) stdout(`kept (written within --min-age ${values['min-age']})  ${row(f)}\n`);
  const total = `${scan.leftovers.length} left-over backup folder(s), ${formatBytes(bytes)}`;
  if (failed) {
    const removed = scan.leftovers.slice(0, deleted).reduce((n, f) => n + f.bytes, 0);
    stdout(
      `${deleted} of ${scan.leftovers.length} left-over backup folder(s) removed (${formatBytes(removed)} of ${formatBytes(bytes)}); ` +
        `the removal of ${failed.folder} failed, and the folders after it were not tried: run prune --delete again once the cause is fixed\n`,
    );
    return 1;
  }
  stdout(
    values.delete
      ? `${total} removed; ${scan.known} folder(s) of backups Velero has were left alone\n`
      : `${total}; ${scan.known} folder(s) of backups Velero has${scan.leftovers.length > 0 ? '; run with --delete to remove the left-over ones' : ''}\n`,
  );
  return 0;
}
