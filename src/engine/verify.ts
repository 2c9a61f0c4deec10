/** Re-reading a backup and checking every file's size and SHA-256 against its manifest. */
import { createHash } from 'node:crypto';
import { readObject } from '../store/read-object.js';
import type { ObjectStore } from '../store/types.js';
import { openBackup } from './catalog.js';
import { checkRelPath, checkTreePlaces, partKey, splitParts } from './layout.js';
import { MANIFEST_KEY, type Manifest } from './manifest.js';
import { forEachLimit } from '../store/pool.js';

export interface VerifyProblem {
  /** Tree prefix + file path, as stored. */
  path: string;
  problem: string;
}

export interface VerifyResult {
  manifest: Manifest;
  ok: boolean;
  files: number;
  bytes: number;
  problems: VerifyProblem[];
}

export async function verifyBackup(store: ObjectStore, name: string, concurrency = 4): Promise<VerifyResult> {
  const manifest = await openBackup(store, name);
  const problems: VerifyProblem[] = [];
  let bytes = 0;
  // A manifest whose paths a restore refuses is a backup that cannot be restored.
  try {
    checkTreePlaces(manifest.trees);
    for (const tree of manifest.trees) for (const file of tree.files) checkRelPath(file.path, `path of a file in tree ${JSON.stringify(tree.prefix)}`);
  } catch (err) {
    problems.push({ path: MANIFEST_KEY, problem: `a restore refuses this manifest: ${(err as Error).message}` });
  }
  const jobs = manifest.trees.flatMap((tree) => tree.files.map((file) => ({ tree, file })));
  await forEachLimit(jobs, concurrency, async ({ tree, file }) => {
    const path = `${tree.prefix}${file.path}`;
    const hash = createHash('sha256');
    let got = 0;
    try {
      for (const part of splitParts(file.path, file.size)) {
        const key = `${name}/${tree.prefix}${partKey(part)}`;
        const info = await store.head(key);
        if (!info) {
          problems.push({ path, problem: `object ${key} is missing` });
          return;
        }
        if (info.size !== part.size) {
          problems.push({ path, problem: `object ${key} has ${info.size} bytes, expected ${part.size}` });
          return;
        }
        if (part.size === 0) continue;
        await readObject(store, key, part.size, (chunk) => {
          hash.update(chunk);
          got += chunk.length;
        });
      }
    } catch (err) {
      problems.push({ path, problem: `cannot read: ${(err as Error).message}` });
      return;
    }
    bytes += got;
    const sha = hash.digest('hex');
    if (got !== file.size) problems.push({ path, problem: `read ${got} bytes, the manifest says ${file.size}` });
    else if (sha !== file.sha256) problems.push({ path, problem: `SHA-256 ${sha} does not match the manifest (${file.sha256})` });
  });
  problems.sort((a, b) => a.path.localeCompare(b.path));
  return { manifest, ok: problems.length === 0, files: jobs.length, bytes, problems };
}
