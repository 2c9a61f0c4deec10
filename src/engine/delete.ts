/**
 * Removing one backup. Backups never share objects (an incremental copies unchanged files
 * server-side instead of pointing at them), so deleting one folder cannot break another. The
 * complete markers go first: a deletion interrupted half-way leaves an incomplete backup that
 * every reader refuses, never a complete-looking one with files missing.
 */
import type { ObjectStore } from '../store/types.js';
import { checkRelPath, VM_COMPLETE_MARKER } from './layout.js';
import { COMPLETE_KEY, IN_PROGRESS_KEY } from './manifest.js';

export interface DeleteResult {
  objects: number;
  bytes: number;
}

export async function deleteBackup(store: ObjectStore, name: string): Promise<DeleteResult> {
  checkRelPath(name, 'backup name');
  // A Map: a key the listing repeats (a misbehaving server) is one object.
  const sizes = new Map<string, number>();
  for await (const obj of store.list(`${name}/`)) sizes.set(obj.key, obj.size);
  const keys = [...sizes.keys()];
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  const isMarker = (key: string) => key === `${name}/${COMPLETE_KEY}` || key.endsWith(`/${VM_COMPLETE_MARKER}`);
  // The in-progress marker goes last: a removal cut short leaves a failed attempt that the next
  // backup still knows as one (failedAttempts) and removes.
  const inProgress = `${name}/${IN_PROGRESS_KEY}`;
  await store.delete(keys.filter(isMarker));
  await store.delete(keys.filter((k) => !isMarker(k) && k !== inProgress));
  if (sizes.has(inProgress)) await store.delete([inProgress]);
  return { objects: keys.length, bytes };
}
