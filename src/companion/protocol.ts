/**
 * What the plugin and the companion say to each other over exec streams (docs/companion.md):
 * the `files` document, the `tar` request line, the request to be cancelled when stdin ends, and
 * the exit codes. The companion produces them
 * (files.ts, tar.ts); the plugin imports the types and the parse functions from here, so both
 * sides check the same shape. Small on purpose: the plugin and the sidecar both load it.
 */
import { checkRelPath, checkTreePlaces } from '../engine/layout.js';
import type { SnapshotFile } from '../engine/files.js';
import { isSourceKind, type SourceKind } from '../victoria/types.js';

export const COMPANION_FILES_FORMAT = 'velero-plugin-victoria/companion-files/v2';

/** Exit codes of every `companion` command. */
export const COMPANION_EXIT = {
  ok: 0,
  /** The command failed (server, files, state); stderr says why. */
  failed: 1,
  /** Bad flags, configuration or request (e.g. a tar path not in the recorded set). */
  usage: 2,
  /** No snapshot set is recorded: `companion hook pre` has not run (or `hook post` already did). */
  noRecord: 3,
} as const;

export const NO_RECORD_MESSAGE = 'no snapshot recorded: run `companion hook pre` first';

/** One snapshot's files: a vmbackup-layout tree (docs/velero-backup.md, "What lands in the bucket"). */
export interface CompanionTree {
  /** relPath prefix of the tree's files: '' (VictoriaMetrics) or `partitions/YYYYMMDD/` (VictoriaLogs). */
  prefix: string;
  /** Where the tree is restored, relative to the data directory: '' or `partitions/YYYYMMDD`. */
  restoreTo: string;
  /** Files as src/engine/files.ts listSnapshotFiles lists them, paths relative to the tree. */
  files: SnapshotFile[];
  /** The snapshot the tree was listed from, which the tar requests name (TarRequest.snapshot). Absent from older companions. */
  snapshot?: string;
}

/** The `companion files` document: the recorded snapshot set and its files. */
export interface CompanionFiles {
  format: typeof COMPANION_FILES_FORMAT;
  kind: SourceKind;
  /** The server's base URL, without credentials. */
  url: string;
  /** Server version, e.g. `v1.145.0`; absent when the build does not report one. */
  version?: string;
  /** Snapshot time (ISO 8601, UTC): `companion counts` counts data before it. */
  createdAt: string;
  /** Snapshot names, as the server made them. */
  snapshots: string[];
  trees: CompanionTree[];
  /** VictoriaLogs snapshots whose partition retention dropped after the pre hook: no tree, no data. */
  droppedByRetention?: string[];
  /** The companion's --data-dir: the backup action records where below the data volume's mount the data lives. Absent from older companions. */
  dataDir?: string;
}

/** The `companion counts` document: what the database holds before the recorded snapshot time. */
export interface CompanionCounts {
  /** Flattened counts (series/samples, or rows and rows.YYYYMMDD). */
  counts: Record<string, number>;
  /** Data before this instant was counted: the recorded snapshot time less a margin for late data (flat-counts.ts). */
  countedBefore: string;
  /** Data from this instant on was counted (inside the database's retention); absent: from the first sample. */
  countedFrom?: string;
  durationSeconds: number;
}

/**
 * The client's request to be treated as gone when the command's stdin ends (docs/companion.md,
 * Cancellation): Kubernetes does not end an exec'd process when its client disconnects, it only
 * closes the process's stdin. A plugin that sends it holds stdin open for the exec's whole life;
 * older plugins do not send it, and their end of stdin means nothing (they close stdin right after
 * the tar request on v5, and open none for `counts`).
 */
export interface CancelRequest {
  cancelOnStdinEnd?: boolean;
}

/** The one line `companion tar` reads on stdin. */
export interface TarRequest extends CancelRequest {
  /** A tree's `prefix` from the files document. */
  tree: string;
  /** Paths in that tree; the tar holds one entry per path, in this order, named by the path. */
  files: string[];
  /**
   * The tree's snapshot as `companion files` listed it: if the recorded set was replaced since (a
   * pre hook of another backup), the tar is refused instead of sending files of another snapshot.
   * Absent from older plugins, which are not checked.
   */
  snapshot?: string;
}

/** Thrown by the parse functions; the message names the offending field. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

type Json = Record<string, unknown>;

function object(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(`${where} must be a JSON object`);
  return v as Json;
}

function string(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new ProtocolError(`${where} must be a string`);
  return v;
}

function boolean(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new ProtocolError(`${where} must be true or false`);
  return v;
}

function array(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${where} must be an array`);
  return v;
}

function relPath(v: unknown, where: string): string {
  try {
    return checkRelPath(string(v, where), where);
  } catch (err) {
    throw err instanceof ProtocolError ? err : new ProtocolError((err as Error).message);
  }
}

/** '' or a relative directory path ending in '/'. */
function treePrefix(v: unknown, where: string): string {
  const s = string(v, where);
  if (s === '') return s;
  if (!s.endsWith('/')) throw new ProtocolError(`${where} must be '' or end in '/'`);
  relPath(s.slice(0, -1), where);
  return s;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`${what} is not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
}

function parseFile(v: unknown, where: string): SnapshotFile {
  const f = object(v, where);
  const size = f.size;
  const mtimeMs = f.mtimeMs;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ProtocolError(`${where}.size must be a non-negative integer`);
  if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) throw new ProtocolError(`${where}.mtimeMs must be a number`);
  return { path: relPath(f.path, `${where}.path`), size, mtimeMs };
}

/** Parses and checks the stdout of `companion files`; throws ProtocolError naming the bad field. */
export function parseCompanionFiles(text: string): CompanionFiles {
  const doc = object(parseJson(text, 'companion files output'), 'companion files output');
  if (doc.format !== COMPANION_FILES_FORMAT) {
    throw new ProtocolError(`companion files output has format ${JSON.stringify(doc.format)}, expected ${COMPANION_FILES_FORMAT}: are the plugin and the sidecar image the same version?`);
  }
  if (!isSourceKind(doc.kind)) throw new ProtocolError('kind must be "metrics" or "logs"');
  const createdAt = string(doc.createdAt, 'createdAt');
  if (Number.isNaN(Date.parse(createdAt))) throw new ProtocolError(`createdAt ${JSON.stringify(createdAt)} is not a date`);
  const trees = array(doc.trees, 'trees').map((t, i): CompanionTree => {
    const tree = object(t, `trees[${i}]`);
    return {
      prefix: treePrefix(tree.prefix, `trees[${i}].prefix`),
      restoreTo: string(tree.restoreTo, `trees[${i}].restoreTo`),
      files: array(tree.files, `trees[${i}].files`).map((f, j) => parseFile(f, `trees[${i}].files[${j}]`)),
      ...(tree.snapshot === undefined ? {} : { snapshot: string(tree.snapshot, `trees[${i}].snapshot`) }),
    };
  });
  try {
    checkTreePlaces(trees);
  } catch (err) {
    throw new ProtocolError((err as Error).message);
  }
  return {
    format: COMPANION_FILES_FORMAT,
    kind: doc.kind,
    url: string(doc.url, 'url'),
    ...(doc.version === undefined ? {} : { version: string(doc.version, 'version') }),
    createdAt,
    snapshots: array(doc.snapshots, 'snapshots').map((s, i) => string(s, `snapshots[${i}]`)),
    trees,
    ...(doc.droppedByRetention === undefined
      ? {}
      : { droppedByRetention: array(doc.droppedByRetention, 'droppedByRetention').map((s, i) => string(s, `droppedByRetention[${i}]`)) }),
    ...(doc.dataDir === undefined ? {} : { dataDir: string(doc.dataDir, 'dataDir') }),
  };
}

/** Parses and checks the stdout of `companion counts`; throws ProtocolError naming the bad field. */
export function parseCompanionCounts(text: string): CompanionCounts {
  const doc = object(parseJson(text, 'companion counts output'), 'companion counts output');
  const counts: Record<string, number> = {};
  for (const [k, n] of Object.entries(object(doc.counts, 'counts'))) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new ProtocolError(`counts.${k} must be a non-negative integer`);
    counts[k] = n;
  }
  const countedBefore = string(doc.countedBefore, 'countedBefore');
  if (Number.isNaN(Date.parse(countedBefore))) throw new ProtocolError(`countedBefore ${JSON.stringify(countedBefore)} is not a date`);
  let countedFrom: string | undefined;
  if (doc.countedFrom !== undefined) {
    countedFrom = string(doc.countedFrom, 'countedFrom');
    if (Number.isNaN(Date.parse(countedFrom))) throw new ProtocolError(`countedFrom ${JSON.stringify(countedFrom)} is not a date`);
  }
  const durationSeconds = doc.durationSeconds;
  if (typeof durationSeconds !== 'number' || !Number.isFinite(durationSeconds)) throw new ProtocolError('durationSeconds must be a number');
  return { counts, countedBefore, ...(countedFrom ? { countedFrom } : {}), durationSeconds };
}

/** The line to write to `companion tar`'s stdin (with its newline). */
export function formatTarRequest(request: TarRequest): string {
  const { tree, files, snapshot, cancelOnStdinEnd } = request;
  return `${JSON.stringify({ tree, files, ...(snapshot === undefined ? {} : { snapshot }), ...(cancelOnStdinEnd === undefined ? {} : { cancelOnStdinEnd }) })}\n`;
}

/**
 * The line a plugin writes to `companion counts`' stdin (with its newline): counts has no request,
 * so this line is only the CancelRequest. Companions before it never read stdin, so they ignore it.
 */
export const COUNTS_CANCEL_LINE = `${JSON.stringify({ cancelOnStdinEnd: true } satisfies CancelRequest)}\n`;

/**
 * Whether the first stdin line of `counts` asks to be cancelled when stdin ends. Anything else
 * (no line, another line) is not a request: `counts` never read its stdin before, so nothing a
 * caller sends there may fail the count.
 */
export function asksCancelOnStdinEnd(line: string): boolean {
  try {
    const req: unknown = JSON.parse(line);
    return typeof req === 'object' && req !== null && (req as CancelRequest).cancelOnStdinEnd === true;
  } catch {
    return false;
  }
}

/** Parses the request line of `companion tar`; throws ProtocolError naming the bad field. */
export function parseTarRequest(line: string): TarRequest {
  const req = object(parseJson(line, 'tar request'), 'tar request');
  return {
    tree: treePrefix(req.tree, 'tar request "tree"'),
    files: array(req.files, 'tar request "files"').map((p, i) => relPath(p, `tar request "files"[${i}]`)),
    ...(req.snapshot === undefined ? {} : { snapshot: string(req.snapshot, 'tar request "snapshot"') }),
    ...(req.cancelOnStdinEnd === undefined ? {} : { cancelOnStdinEnd: boolean(req.cancelOnStdinEnd, 'tar request "cancelOnStdinEnd"') }),
  };
}
