/**
 * Our manifest: what vmbackup does not record. The SHA-256 and size of every file, the source kind,
 * version and snapshots, counts at backup time, timings. It sits beside the vmbackup trees with an
 * `.ignore` suffix (vmbackup and vmrestore skip such keys), and our complete marker, written last,
 * holds the manifest's own SHA-256: a backup without it, or whose manifest does not match it, is
 * incomplete to every reader.
 */
import { createHash } from 'node:crypto';
import { manifestShapeProblem } from './manifest-shape.js';

export const MANIFEST_KEY = 'victoria_manifest.ignore';
export const COMPLETE_KEY = 'victoria_complete.ignore';
/**
 * Written before a backup writes anything else into its folder, removed once it is complete: the
 * folder of an attempt that did not finish is still recognisably ours (and of which kind), so that a
 * re-run may replace it, while a folder holding anything else is never written into.
 */
export const IN_PROGRESS_KEY = 'victoria_in_progress.ignore';
export const MANIFEST_FORMAT = 'velero-plugin-victoria/backup/v1';
/** The complete and in-progress markers are a few hundred bytes. */
export const MAX_MARKER_BYTES = 64 * 1024;
/** About 250 bytes per file: room for a million files, as for the restore plan (store/plan.ts). */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

export type SourceKind = 'metrics' | 'logs';

export interface ManifestFile {
  /** Path inside the tree, as vmbackup names it (through VictoriaMetrics' snapshot symlinks). */
  path: string;
  size: number;
  /** Modification time of the snapshot file (ms): part of the "unchanged" test for incrementals. */
  mtimeMs: number;
  sha256: string;
  /** How the bytes got into this backup. */
  origin: 'uploaded' | 'copied';
  /**
   * The ETag of each of the file's objects (its parts, in order), as the store listed them when the
   * backup was checked: a later backup copies an object from this one only while it still has this
   * ETag, so a base object replaced at the same size is uploaded again rather than copied on.
   * Absent for stores without ETags (file://) and in manifests written before it existed (then a
   * copy checks the size only).
   */
  etags?: string[];
}

export interface ManifestTree {
  /** Key prefix of this vmbackup tree inside the backup: '' (metrics) or 'partitions/YYYYMMDD/' (logs). */
  prefix: string;
  /** Where the tree is restored, relative to the data directory: '' or 'partitions/YYYYMMDD'. */
  restoreTo: string;
  files: ManifestFile[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  kind: SourceKind;
  source: {
    /** Base URL of the database, without credentials. */
    url?: string;
    version?: string;
    snapshots: string[];
  };
  /**
   * Counts at backup time, for restore verification (e.g. series, samples, rows); `{}` when the
   * database could not count (then `countsError` says why, and a drill checks checksums only).
   */
  counts: Record<string, number>;
  countsError?: string;
  /**
   * The counts cover data from this instant (ISO 8601) to `countedBefore`; absent: from the first
   * sample. Set when the database hides or drops data older than its retention (retention.ts).
   */
  countedFrom?: string;
  /**
   * The counts cover data before this instant: the snapshot time less a margin for data that
   * arrives late (victoria/flat-counts.ts). Absent in manifests written before it existed, whose
   * counts end at `createdAt`: use countedBefore() to read it.
   */
  countedBefore?: string;
  createdAt: string;
  completedAt: string;
  /** The backup this one copied unchanged files from, if any. */
  basedOn?: string;
  /**
   * Unchanged files that were uploaded instead of copied server-side from the base backup: the
   * store refused the copy, or the base's object was missing or of the wrong size (the backup is
   * complete all the same): how many, and the first one's reason.
   */
  copiesRefused?: { count: number; first: string };
  /**
   * Files that an interrupted earlier run into this backup's name had finished, and that this run
   * found in place instead of writing them again (journal.ts): how many, and their bytes. Not in
   * `totals.bytesUploaded` or `totals.bytesCopied`, which count this run's transfers.
   */
  resumed?: { files: number; bytes: number };
  /**
   * Files that a failed backup under another name (`backup`, its folder beside this one) had
   * finished, copied server-side from its folder instead of uploaded again: how many, and their
   * bytes, which `totals.bytesCopied` includes.
   */
  resumedFrom?: { backup: string; files: number; bytes: number };
  totals: { files: number; bytes: number; bytesUploaded: number; bytesCopied: number };
  durationSeconds: number;
  trees: ManifestTree[];
}

/** The manifest's text is made into buffers of about this many bytes. */
const MANIFEST_CHUNK = 1024 * 1024;

/**
 * A manifest as it is written: JSON with a line per file (readable with grep and less, and smaller
 * than indented JSON), made a file at a time into buffers of about 1 MiB, with its size and
 * SHA-256 (the complete marker's). A backup of hundreds of thousands of files never holds its
 * manifest as one string beside its bytes.
 */
export function serializeManifest(manifest: Manifest): { chunks: Buffer[]; size: number; sha256: string } {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  let text = '';
  const flush = (): void => {
    const chunk = Buffer.from(text);
    hash.update(chunk);
    chunks.push(chunk);
    size += chunk.length;
    text = '';
  };
  const add = (piece: string): void => {
    text += piece;
    if (text.length >= MANIFEST_CHUNK) flush();
  };
  // `trees` is the manifest's last field and `files` each tree's: the text is that of
  // JSON.stringify, with a line break before each tree and each file.
  const { trees, ...head } = manifest;
  add(`${JSON.stringify(head).slice(0, -1)},"trees":[`);
  for (const [i, { files, ...tree }] of trees.entries()) {
    add(`${i === 0 ? '' : ','}\n${JSON.stringify(tree).slice(0, -1)},"files":[`);
    for (const [j, file] of files.entries()) add(`${j === 0 ? '' : ','}\n${JSON.stringify(file)}`);
    add('\n]}');
  }
  add('\n]}\n');
  flush();
  return { chunks, size, sha256: hash.digest('hex') };
}

/** A manifest's copiesRefused, as the CLI and the plugin report it. */
export function copiesRefusedText(r: NonNullable<Manifest['copiesRefused']>): string {
  return `${r.count} unchanged ${r.count === 1 ? 'file was' : 'files were'} uploaded instead of copied server-side from the base backup (the backup is complete; the first one's reason: ${r.first})`;
}

export interface CompleteMarker {
  format: typeof MANIFEST_FORMAT;
  manifestSha256: string;
  completedAt: string;
}

/** A manifest of a format this version does not read (a later version's): whole, just not for us. */
export class UnknownManifestFormatError extends Error {}

export function parseManifest(text: string, where: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: manifest is not valid JSON (${(err as Error).message})`);
  }
  const format = (value as { format?: unknown } | null)?.format;
  if (format !== MANIFEST_FORMAT) {
    throw new UnknownManifestFormatError(`${where}: unknown manifest format ${JSON.stringify(format)} (this tool reads ${MANIFEST_FORMAT})`);
  }
  const problem = manifestShapeProblem(value);
  if (problem !== undefined) throw new Error(`${where}: ${MANIFEST_KEY} is not a manifest as velero-plugin-victoria writes it: ${problem}`);
  return value as Manifest;
}

/** Where a manifest's counts end: `countedBefore`, or `createdAt` in manifests written before it existed. */
export function countedBefore(manifest: Pick<Manifest, 'countedBefore' | 'createdAt'>): string {
  return manifest.countedBefore ?? manifest.createdAt;
}
