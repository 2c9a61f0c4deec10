import { parseArgs } from 'node:util';
import { restoreBackup } from '../../engine/restore.js';
import { formatBytes, progressPrinter } from '../progress.js';
import { openStoreFromFlags, splitBackupPath, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';

export const RESTORE_USAGE = `velero-plugin-victoria restore --src ROOT/NAME --data-dir DIR [--replace] [--json]

Downloads backup ROOT/NAME into DIR (the database must be stopped; DIR becomes its -storageDataPath)
and checks every file's SHA-256. Refuses an incomplete backup. Refuses a non-empty DIR unless
--replace is given; then the current contents are moved aside (DIR-replaced-<time>), never deleted.

${STORE_USAGE}`;

export async function restoreCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { src: { type: 'string' }, 'data-dir': { type: 'string' }, replace: { type: 'boolean' }, json: { type: 'boolean' }, ...STORE_FLAGS },
  });
  if (!values.src || !values['data-dir']) throw new Error(`--src and --data-dir are required\n\n${RESTORE_USAGE}`);
  const { root, name } = splitBackupPath(values.src);
  const store = openStoreFromFlags(root, values);
  const progress = progressPrinter(`restore ${name}`);
  const res = await restoreBackup({
    store,
    name,
    dataDir: values['data-dir'],
    replace: Boolean(values.replace),
    onProgress: (p) => progress.update(p),
  });
  progress.done();
  const summary = {
    backup: `${store.location}/${name}`,
    dataDir: values['data-dir'],
    kind: res.manifest.kind,
    files: res.files,
    bytesTotal: res.bytes,
    verified: true,
    movedAside: res.movedAside ?? null,
    durationSeconds: res.durationSeconds,
    counts: res.manifest.counts,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `restored ${summary.backup} into ${summary.dataDir}: ${summary.files} files, ${formatBytes(summary.bytesTotal)}, every SHA-256 verified, in ${summary.durationSeconds.toFixed(1)} s\n` +
        (res.movedAside ? `previous contents moved to ${res.movedAside}\n` : ''),
    );
  }
  return 0;
}
