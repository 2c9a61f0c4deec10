/**
 * Backup folders of ours that Velero no longer knows. Velero deletes a backup without calling the
 * delete action when the backup's tarball never reached the bucket (a Velero server restarted
 * mid-backup), and ignores a delete action's failure, so such folders can stay behind
 * (docs/velero-backup.md, Deletion). The bucket itself is the judge, not a cluster's Backup
 * objects: Velero keeps every backup it knows under `<prefix>/backups/<name>/` in the same
 * location, and a folder `<prefix>/plugins/victoria/<namespace>/<workload>/<name>/` without that
 * is left over. Reading the bucket also keeps another cluster's backups in a shared location safe,
 * which a cluster's own list of Backups would not (they are synced only every minute).
 *
 * A running backup has our folder before Velero uploads its own files at the end, so folders
 * written to within `minAgeMs` are never counted as left over.
 *
 * The two folders are read through two stores, Velero's `backups/` and our `plugins/victoria/`,
 * so that a location without a prefix (the bucket root, common for Velero) works: a store needs a
 * non-empty prefix of its own (store/url.ts).
 */
import type { ObjectStore } from '../store/types.js';
import { PLUGIN_FOLDER } from './record.js';

/** Velero's own folder of its backups in the location (pkg/persistence/object_store_layout.go). */
export const VELERO_BACKUPS = 'backups';
/** What Velero writes for every backup, in `<prefix>/backups/<name>/`, once it is done with the backup's items. */
export const VELERO_BACKUP_FILE = 'velero-backup.json';

export interface BackupFolder {
  namespace: string;
  workload: string;
  backup: string;
  /** The folder's key prefix in the location, without the trailing `/`. */
  folder: string;
  objects: number;
  bytes: number;
  /** When the folder was last written to (its newest object). */
  lastModified: Date | undefined;
}

export interface LeftoverScan {
  /** Folders of backups Velero no longer has, older than the minimum age. */
  leftovers: BackupFolder[];
  /** Folders without a Velero backup but written to recently: perhaps a backup still running. */
  recent: BackupFolder[];
  /** Folders of backups Velero has. */
  known: number;
}

/** `a/b/c/` → `c`: the name of a folder listDirectories returned. */
const lastSegment = (dir: string): string => dir.split('/').at(-2)!;

async function describeFolder(store: ObjectStore, prefix: string, parts: Omit<BackupFolder, 'folder' | 'objects' | 'bytes' | 'lastModified'>): Promise<BackupFolder> {
  const seen = new Set<string>(); // a key the listing repeats (a misbehaving server) is one object
  let bytes = 0;
  let lastModified: Date | undefined;
  for await (const o of store.list(prefix)) {
    if (seen.has(o.key)) continue;
    seen.add(o.key);
    bytes += o.size;
    if (o.lastModified && (!lastModified || o.lastModified > lastModified)) lastModified = o.lastModified;
  }
  return { ...parts, folder: `${PLUGIN_FOLDER}/${prefix.slice(0, -1)}`, objects: seen.size, bytes, lastModified };
}

export interface LocationStores {
  /** Opened on the location's `backups/`. */
  velero: ObjectStore;
  /** Opened on the location's `plugins/victoria/`. */
  plugin: ObjectStore;
}

/**
 * Our backup folders in a location, sorted into left over, recent and known. `allowNoVeleroBackups`
 * accepts a `backups/` without any backup (every one of the location's backups deleted): then
 * every folder is left over.
 */
export async function scanLeftovers(stores: LocationStores, options: { minAgeMs: number; now?: Date; allowNoVeleroBackups?: boolean }): Promise<LeftoverScan> {
  const store = stores.plugin;
  const velero = new Set((await stores.velero.listDirectories('')).map(lastSegment));
  if (velero.size === 0 && !options.allowNoVeleroBackups) {
    // A wrong root would make every folder look left over: refuse rather than risk them.
    throw new Error(
      `${stores.velero.location}/ holds no Velero backup: give the storage location's bucket and prefix (the folder that holds backups/ and plugins/), not a folder inside it; ` +
        'if every Velero backup of this location has been deleted, add --allow-no-velero-backups and every plugin folder in it counts as left over',
    );
  }
  const now = options.now ?? new Date();
  const scan: LeftoverScan = { leftovers: [], recent: [], known: 0 };
  for (const nsDir of await store.listDirectories('')) {
    const namespace = lastSegment(nsDir);
    if (namespace.startsWith('_')) continue; // _restore-plans: no namespace name starts with "_"
    for (const workloadDir of await store.listDirectories(nsDir)) {
      for (const backupDir of await store.listDirectories(workloadDir)) {
        const backup = lastSegment(backupDir);
        if (velero.has(backup)) {
          scan.known++;
          continue;
        }
        const folder = await describeFolder(store, backupDir, { namespace, workload: lastSegment(workloadDir), backup });
        // A server that gives no LastModified cannot show the folder is old: it is kept.
        const young = folder.lastModified === undefined || now.getTime() - folder.lastModified.getTime() < options.minAgeMs;
        (young ? scan.recent : scan.leftovers).push(folder);
      }
    }
  }
  return scan;
}
