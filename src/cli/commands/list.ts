import { existsSync, statSync } from 'node:fs';
import { parseFlags } from '../../common/parse-flags.js';
import { listBackups, type BackupListing } from '../../engine/catalog.js';
import { BACKUP_MARKERS } from '../../engine/backup-folder.js';
import { countedBefore } from '../../engine/manifest.js';
import { FileStore } from '../../store/file.js';
import type { ObjectStore } from '../../store/types.js';
import { parseStoreLocation } from '../../store/url.js';
import { formatBytes } from '../progress.js';
import { openStoreFromFlags, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { UsageError } from '../../common/usage-error.js';
import { jsonOnFailure } from '../json-failure.js';

export const LIST_USAGE = `velero-plugin-victoria list --dst ROOT [--json]

Lists the backups under ROOT, complete or not.

${STORE_USAGE}`;

export async function listCommand(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: { dst: { type: 'string' }, json: { type: 'boolean' }, ...STORE_FLAGS } });
  if (!values.dst) throw new UsageError(`--dst is required\n\n${LIST_USAGE}`);
  // As the store names itself once it is open; until then as given.
  let root = values.dst.replace(/\/+$/, '');
  const backups = await jsonOnFailure(Boolean(values.json), () => ({ root }), async () => {
    const store = openStoreFromFlags(values.dst!, values);
    root = store.location;
    return listRoot(store);
  });
  const rows = backups.map((b) => ({
    name: b.name,
    complete: b.complete,
    kind: b.manifest?.kind ?? null,
    completedAt: b.manifest?.completedAt ?? null,
    files: b.manifest?.totals.files ?? null,
    bytes: b.manifest?.totals.bytes ?? null,
    basedOn: b.manifest?.basedOn ?? null,
    counts: b.manifest?.counts ?? null,
    // The range the counts cover, for `companion verify --start … --end …` after a restore.
    countedFrom: b.manifest?.countedFrom ?? null,
    countedBefore: b.manifest ? countedBefore(b.manifest) : null,
    problem: b.problem ?? null,
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ root, backups: rows })}\n`);
    return 0;
  }
  if (rows.length === 0) process.stdout.write(`no backups under ${root}\n`);
  for (const r of rows) {
    process.stdout.write(
      r.complete
        ? `${r.name}  complete  ${r.kind}  ${r.files} files  ${formatBytes(r.bytes ?? 0)}  ${r.completedAt}\n`
        : `${r.name}  INCOMPLETE  ${r.problem}\n`,
    );
  }
  return 0;
}

/** The backups under the store's root, once it is known to be a folder of backups. */
async function listRoot(store: ObjectStore): Promise<BackupListing[]> {
  if (store instanceof FileStore && existsSync(store.root) && !statSync(store.root).isDirectory()) throw new Error(`${store.location} is a file, not a directory: check --dst`);
  // A backup given as the root would list its data folder as a broken backup.
  for (const marker of BACKUP_MARKERS) {
    if (!(await store.head(marker))) continue;
    // The folder above, if it can be a root (a bucket without a prefix cannot).
    const above = store.location.replace(/\/[^/]*$/, '');
    const list = isStoreLocation(above) ? `list the folder above it, ${above}` : 'it has no folder of backups above it to list';
    throw new Error(`${store.location} is itself a backup (it holds ${marker}): ${list}`);
  }
  const backups = await listBackups(store);
  // A directory that is not there is a typo more often than an empty root (S3 cannot tell the two apart).
  if (backups.length === 0 && store instanceof FileStore && !existsSync(store.root)) throw new Error(`${store.location} does not exist: check --dst`);
  return backups;
}

function isStoreLocation(root: string): boolean {
  try {
    parseStoreLocation(root);
    return true;
  } catch {
    return false;
  }
}
