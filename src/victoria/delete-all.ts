/**
 * Deleting several snapshots: try every one, then report all failures together, so one stuck
 * snapshot never leaves the others pinning disk space.
 */
import { VictoriaDeleteError } from './errors.js';
import type { Snapshot } from './types.js';

export async function deleteEach(
  snapshots: readonly Snapshot[],
  deleteOne: (s: Snapshot) => Promise<unknown>,
  product: string,
  url: string,
): Promise<void> {
  const errors: Error[] = [];
  // One at a time: deletions are quick, and the servers serialise them internally anyway.
  for (const s of snapshots) {
    try {
      await deleteOne(s);
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  if (errors.length === 1 && errors[0]) throw errors[0];
  if (errors.length > 1) {
    throw new VictoriaDeleteError(
      `${product} at ${url}: ${errors.length} of ${snapshots.length} snapshot deletions failed: ${errors.map((e) => e.message).join('; ')}`,
      url,
      errors,
    );
  }
}
