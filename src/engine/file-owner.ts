/**
 * Who the restored files belong to: the database's user, when the restore runs as root for it
 * (actions/restore-spec.ts, `restore --chown`).
 */
import { chown, type FileHandle } from 'node:fs/promises';

export interface FileOwner {
  uid: number;
  /** Absent: the group stays the restoring user's. */
  gid?: number;
}

/** `uid` or `uid:gid`, for messages. */
export const formatOwner = (o: FileOwner): string => (o.gid === undefined ? String(o.uid) : `${o.uid}:${o.gid}`);

/** Gives `path` (open as `fh`, else by path) to `owner`; a refusal names what is needed. */
export async function giveTo(owner: FileOwner, path: string, fh?: FileHandle): Promise<void> {
  const gid = owner.gid ?? -1; // -1: unchanged
  try {
    if (fh) await fh.chown(owner.uid, gid);
    else await chown(path, owner.uid, gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EINVAL') throw err;
    throw new Error(
      `cannot give ${path} to user ${formatOwner(owner)} (${code}): giving the restored files to the database's user needs root with the CHOWN capability` +
        (code === 'EINVAL' ? ', and a user that exists in this user namespace' : ''),
      { cause: err },
    );
  }
}
