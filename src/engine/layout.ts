/**
 * The vmbackup object layout (docs/velero-backup.md, "What lands in the bucket"), so that
 * stock `vmrestore` can restore our backups without us:
 *   <tree>/<relPath>/<FileSize>_<Offset>_<Size>   (16-digit upper-case hex, 1 GiB parts)
 * plus the markers `backup_metadata.ignore` and `backup_complete.ignore` at the tree root.
 */
import { posix } from 'node:path';

/** vmbackup's part size; other sizes restore, but defeat incremental backups and restores. */
export const MAX_PART_SIZE = 1024 * 1024 * 1024;

export const VM_COMPLETE_MARKER = 'backup_complete.ignore';
export const VM_METADATA_MARKER = 'backup_metadata.ignore';

export interface Part {
  relPath: string;
  fileSize: number;
  offset: number;
  size: number;
}

const hex16 = (n: number): string => n.toString(16).toUpperCase().padStart(16, '0');

/** Object key of a part, relative to its tree. */
export function partKey(part: Part): string {
  return `${part.relPath}/${hex16(part.fileSize)}_${hex16(part.offset)}_${hex16(part.size)}`;
}

const PART_RE = /^(.+)\/([0-9A-F]{16})_([0-9A-F]{16})_([0-9A-F]{16})$/;

/** Parse a key as vmrestore does; undefined for anything else (markers, our manifest). */
export function parsePartKey(key: string): Part | undefined {
  const m = PART_RE.exec(key);
  if (!m) return undefined;
  return { relPath: m[1]!, fileSize: parseInt(m[2]!, 16), offset: parseInt(m[3]!, 16), size: parseInt(m[4]!, 16) };
}

/** A file of size S becomes parts at 0, 1 GiB, …; a zero-byte file is exactly one empty part. */
export function splitParts(relPath: string, fileSize: number, partSize = MAX_PART_SIZE): Part[] {
  if (fileSize === 0) return [{ relPath, fileSize, offset: 0, size: 0 }];
  const parts: Part[] = [];
  for (let offset = 0; offset < fileSize; offset += partSize) {
    parts.push({ relPath, fileSize, offset, size: Math.min(partSize, fileSize - offset) });
  }
  return parts;
}

/** Files vmbackup never backs up (B.2): locks, restore markers, temporaries. */
export function isSkippedFile(relPath: string): boolean {
  const name = posix.basename(relPath);
  return (
    name === 'flock.lock' ||
    name === 'restore-in-progress' ||
    name === 'backup_restore.ignore' ||
    name === '.vm_app_running' ||
    name.endsWith('.tmp') ||
    name.endsWith('.ignore')
  );
}

/**
 * Files whose content can change while their size and path stay the same. They are always uploaded
 * again, never copied from an earlier backup (B.4: vmbackup does the same for the first two).
 */
export function isMutableFile(relPath: string): boolean {
  const name = posix.basename(relPath);
  return (
    name === 'parts.json' ||
    name === 'appliedRetention.txt' ||
    name === 'deleted_rows.bin' ||
    name === 'min_dedup_interval' ||
    relPath.startsWith('metadata/') ||
    !relPath.includes('/') // top-level files are bookkeeping, not immutable parts
  );
}

/**
 * A relative path that is safe to use as a key segment and to join under a restore target:
 * `/` separators, no leading `/`, no `.`/`..`/empty segments, no backslashes or NULs.
 */
export function checkRelPath(relPath: string, what = 'path'): string {
  const bad =
    relPath === '' ||
    relPath.startsWith('/') ||
    relPath.includes('\\') ||
    relPath.includes('\0') ||
    relPath.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (bad) throw new Error(`unsafe ${what} ${JSON.stringify(relPath)}: it must be relative, with no "..", "." or empty segments`);
  return relPath;
}

/**
 * A backup's trees: each one's key prefix ('' or a relative folder ending in '/') and restore
 * location ('' or a relative folder), both distinct between trees, and no restore location inside
 * another's (so a tree restored to '', the data directory itself, is the only one). A manifest is
 * only as trustworthy as whoever can write the bucket: restores and backups check this before they
 * read or write anything, so that no tree lands outside the data directory or over another tree.
 */
export function checkTreePlaces(trees: ReadonlyArray<{ prefix: string; restoreTo: string }>): void {
  const places: string[] = [];
  const prefixes = new Set<string>();
  for (const { prefix, restoreTo } of trees) {
    if (prefix !== '') {
      if (!prefix.endsWith('/')) throw new Error(`unsafe tree prefix ${JSON.stringify(prefix)}: it must be '' or end in "/"`);
      checkRelPath(prefix.slice(0, -1), 'tree prefix');
    }
    if (prefixes.has(prefix)) throw new Error(`two trees have the prefix ${JSON.stringify(prefix)}`);
    prefixes.add(prefix);
    if (restoreTo !== '') checkRelPath(restoreTo, 'restore location');
    places.push(restoreTo);
  }
  if (places.includes('') && places.length > 1) throw new Error(`a tree restores to the data directory itself, beside ${places.length - 1} other tree(s): it must be the only one`);
  const nested = [...places].sort();
  for (let i = 1; i < nested.length; i++) {
    const [a, b] = [nested[i - 1]!, nested[i]!];
    if (a === b || b.startsWith(`${a}/`)) throw new Error(`two trees restore to ${JSON.stringify(a)}${a === b ? '' : ` and ${JSON.stringify(b)}, one inside the other`}`);
  }
}
