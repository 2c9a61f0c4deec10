import { parseFlags } from '../../common/parse-flags.js';
import { checkBackupName } from '../../engine/backup-folder.js';
import { COMPLETE_KEY, copiesRefusedText, countedBefore } from '../../engine/manifest.js';
import { openSource } from '../../victoria/index.js';
import { isSourceKind } from '../../victoria/types.js';
import { progressPrinter, formatBytes } from '../progress.js';
import { maxBytesPerSecond, RATE_FLAG } from '../rate-flag.js';
import { backupFromSnapshots } from '../snapshot-backup.js';
import { openStoreFromFlags, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { checkOutsideVeleroLocation } from '../velero-location.js';
import { UsageError } from '../../common/usage-error.js';
import { jsonOnFailure } from '../json-failure.js';

export const BACKUP_USAGE = `velero-plugin-victoria backup --kind metrics|logs --url URL --data-dir DIR --dst ROOT [--name NAME] [--auth-key K] [--force-flush-auth-key K] [--full] [--no-counts] [--max-bytes-per-second R] [--json]

Snapshots the database at URL, uploads the snapshot files from DIR (its -storageDataPath) to
ROOT/NAME in vmbackup's layout with a SHA-256 manifest, copies files unchanged since the newest
complete backup under ROOT server-side, and deletes the snapshot (also on failure).
ROOT is s3://bucket/prefix or file:///dir; NAME defaults to the UTC time, e.g. 2026-02-04T12-30-00.
The auth key (-snapshotAuthKey / -partitionManageAuthKey) can also come from VICTORIA_AUTH_KEY,
the force-flush key (-forceFlushAuthKey: VictoriaLogs flushes before its snapshots, and the
count flushes first) from VICTORIA_FORCE_FLUSH_AUTH_KEY.
A backup that is interrupted (killed, stopped, failed) leaves ROOT/NAME incomplete; the same
command with --name NAME resumes it, keeping the files the interrupted run had finished.
--full uploads every file. --no-counts skips counting the data (a query over every sample, which
restores compare against): for databases too large to count on every backup.
--max-bytes-per-second caps the upload rate of the whole backup, e.g. 50MiB (units KB, MB, GB, TB,
KiB, MiB, GiB, TiB, as vmbackup's -maxBytesPerSecond); server-side copies are not counted. 0: no limit.

${STORE_USAGE}`;

function defaultBackupName(now = new Date()): string {
  return now.toISOString().slice(0, 19).replace(/:/g, '-');
}

export async function backupCommand(args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      kind: { type: 'string' },
      url: { type: 'string' },
      'data-dir': { type: 'string' },
      dst: { type: 'string' },
      name: { type: 'string' },
      'auth-key': { type: 'string' },
      'force-flush-auth-key': { type: 'string' },
      full: { type: 'boolean' },
      'no-counts': { type: 'boolean' },
      json: { type: 'boolean' },
      ...RATE_FLAG,
      ...STORE_FLAGS,
    },
  });
  const kind = values.kind;
  if (!isSourceKind(kind)) throw new UsageError(`--kind must be metrics or logs\n\n${BACKUP_USAGE}`);
  for (const flag of ['url', 'data-dir', 'dst'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required\n\n${BACKUP_USAGE}`);
  const rate = maxBytesPerSecond(values['max-bytes-per-second']);
  const authKey = values['auth-key'] ?? process.env.VICTORIA_AUTH_KEY;
  const forceFlushAuthKey = values['force-flush-auth-key'] ?? process.env.VICTORIA_FORCE_FLUSH_AUTH_KEY;
  const name = values.name ?? defaultBackupName();
  // Before the database is asked for a snapshot: a bad flag makes nothing happen.
  try {
    checkBackupName(name);
  } catch (err) {
    throw new UsageError(`--name: ${(err as Error).message}`);
  }
  let source;
  try {
    source = openSource(kind, {
      url: values.url!,
      dataDir: values['data-dir']!,
      ...(authKey ? { authKey } : {}),
      ...(forceFlushAuthKey ? { forceFlushAuthKey } : {}),
    });
  } catch (err) {
    throw new UsageError(`--url: ${(err as Error).message}`);
  }
  const json = Boolean(values.json);
  // As the store names itself once it is open; until then as given.
  let location = values.dst!.replace(/\/+$/, '');
  const failed = (error?: string) => ({ backup: `${location}/${name}`, complete: false, kind, ...(error ? { error } : {}) });
  const { store, manifest, cleanupError } = await jsonOnFailure(json, () => failed(), async () => {
    const store = openStoreFromFlags(values.dst!, values);
    location = store.location;
    // The same flags for the folders above it, whose warnings the store above has given once.
    await checkOutsideVeleroLocation(values.dst!, (root) => openStoreFromFlags(root, values, { warn: false }));
    // Replacing is what a re-run with the same name does (as vmbackup into an existing -dst); said, a mistyped --name shows.
    if (values.name && (await store.head(`${name}/${COMPLETE_KEY}`))) process.stderr.write(`note: ${store.location}/${name} holds a complete backup, which this one replaces\n`);
    const progress = progressPrinter(`backup ${name}`);
    const result = await backupFromSnapshots({
      source,
      dataDir: values['data-dir']!,
      store,
      name,
      incremental: !values.full,
      counts: !values['no-counts'],
      ...(rate ? { maxBytesPerSecond: rate } : {}),
      onProgress: (p) => progress.update(p),
      // Stopped by a signal, the process exits from its handler: the object is printed here.
      ...(json ? { onStopped: (outcome) => process.stdout.write(`${JSON.stringify({ ...failed(outcome.message), complete: outcome.complete })}\n`) } : {}),
    });
    progress.done();
    return { store, ...result };
  });
  const summary = {
    backup: `${store.location}/${name}`,
    complete: true,
    kind,
    files: manifest.totals.files,
    bytesTotal: manifest.totals.bytes,
    bytesUploaded: manifest.totals.bytesUploaded,
    bytesCopied: manifest.totals.bytesCopied,
    durationSeconds: manifest.durationSeconds,
    basedOn: manifest.basedOn ?? null,
    snapshots: manifest.source.snapshots,
    counts: manifest.counts,
    ...(manifest.countedFrom ? { countedFrom: manifest.countedFrom } : {}),
    countedBefore: countedBefore(manifest),
    ...(manifest.countsError ? { countsError: manifest.countsError } : {}),
    ...(manifest.copiesRefused ? { copiesRefused: manifest.copiesRefused } : {}),
    ...(manifest.resumed ? { resumed: manifest.resumed } : {}),
    ...(cleanupError ? { snapshotCleanupError: cleanupError } : {}),
  };
  if (cleanupError) process.stderr.write(`warning: the backup is complete, but ${cleanupError}: delete them through the database's API\n`);
  if (manifest.copiesRefused) process.stderr.write(`warning: ${copiesRefusedText(manifest.copiesRefused)}\n`);
  if (manifest.countsError) {
    process.stderr.write(`warning: the backup is complete, but the database could not count its data (${manifest.countsError}); restores of it are verified by checksums only\n`);
  }
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `backup ${summary.backup} complete: ${summary.files} files, ${formatBytes(summary.bytesTotal)} ` +
        `(${formatBytes(summary.bytesUploaded)} uploaded, ${formatBytes(summary.bytesCopied)} copied${manifest.basedOn ? ` from ${manifest.basedOn}` : ''}` +
        `${manifest.resumed ? `, ${manifest.resumed.files} files (${formatBytes(manifest.resumed.bytes)}) kept from an interrupted run` : ''}) ` +
        `in ${summary.durationSeconds.toFixed(1)} s\n`,
    );
  }
  return 0;
}
