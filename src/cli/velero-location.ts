/**
 * The command line's backups stay out of Velero's storage locations. Velero marks a location
 * Unavailable, and stops backing up to it, when a top-level folder it does not know appears there
 * (a backup at the location's prefix, or in a folder of its own below it); and below
 * `<prefix>/plugins/victoria/` a backup that no Velero backup names is what `prune` removes.
 */
import { pathToFileURL } from 'node:url';
import { VELERO_BACKUP_FILE, VELERO_BACKUPS } from '../actions/leftovers.js';
import { PLUGIN_FOLDER } from '../actions/record.js';
import { UsageError } from '../common/usage-error.js';
import { parseStoreLocation } from '../store/url.js';
import type { ObjectStore } from '../store/types.js';

/** Backup folders looked into per candidate prefix: one with Velero's file is enough. */
const FOLDERS_CHECKED = 3;

/**
 * The folders of `root`'s path (the prefix in its bucket, or the directory), and `root` and each
 * folder above it as locations, nearest first (a file:// one encoded again: a `%` or `#` in a
 * directory's name must stay escaped).
 */
function foldersOf(root: string): { segments: string[]; selfAndAbove: string[] } {
  const loc = parseStoreLocation(root);
  const segments = (loc.kind === 's3' ? loc.prefix : loc.path).split('/').filter(Boolean);
  const location = (folders: string[]) =>
    loc.kind === 's3' ? `s3://${loc.bucket}${folders.map((f) => `/${f}`).join('')}` : pathToFileURL(`/${folders.join('/')}`).href.replace(/\/$/, '');
  return { segments, selfAndAbove: segments.map((_, i) => location(segments.slice(0, segments.length - i))).concat(location([])) };
}

/**
 * Refuses a backup root at or below a Velero storage location's prefix (one whose `backups/`
 * holds a Velero backup), or inside the plugin's folder of one. `open` opens a store root with the
 * command's S3 flags. Each folder costs a listing and at most FOLDERS_CHECKED heads.
 */
export async function checkOutsideVeleroLocation(root: string, open: (root: string) => ObjectStore): Promise<void> {
  const fix = 'Give the command line\'s backups a root outside every Velero storage location (another prefix or bucket)';
  const { segments, selfAndAbove } = foldersOf(root);
  const plugin = PLUGIN_FOLDER.split('/');
  if (segments.some((_, i) => plugin.every((p, j) => segments[i + j] === p))) {
    throw new UsageError(
      `--dst ${root} is inside the plugin's folder of a Velero storage location (${PLUGIN_FOLDER}/), which holds the data of Velero backups: ` +
        `\`prune\` removes any backup there that no Velero backup names. ${fix}`,
    );
  }
  for (const folder of selfAndAbove) {
    // Best effort: credentials scoped to the root may not list above it (nor a user read every
    // directory above a file:// root), and that must not stop a backup.
    const found = await veleroBackupIn(() => open(`${folder}/${VELERO_BACKUPS}`)).catch(() => false);
    if (found) {
      throw new UsageError(
        `--dst ${root} is ${folder === selfAndAbove[0] ? '' : 'inside '}the Velero storage location ${folder} (its ${VELERO_BACKUPS}/ holds Velero backups): ` +
          `Velero marks a location that gets a top-level folder it does not know Unavailable, and stops backing up to it. ${fix}`,
      );
    }
  }
}

async function veleroBackupIn(open: () => ObjectStore): Promise<boolean> {
  const backups = open();
  for (const dir of (await backups.listDirectories('')).slice(0, FOLDERS_CHECKED)) {
    if (await backups.head(`${dir}${VELERO_BACKUP_FILE}`)) return true;
  }
  return false;
}
