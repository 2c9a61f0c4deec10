/**
 * The restore init container by name and command, without the rest of restore-spec.ts: Velero
 * polls the restore operation (restore-operation.ts) in a new plugin process every 10 s, and this
 * is all it needs of the container (restore-spec.ts pulls in the plan format and the S3 SDK).
 */
import { EXECUTABLE } from './names.js';
import type { Container, Pod } from './pod-spec.js';

export const RESTORE_CONTAINER = 'victoria-restore';

/** Our init container, not a user's of the same name: it runs our executable's `restore`. */
export function isRestoreContainer(c: Container): boolean {
  const command = Array.isArray(c.command) ? (c.command as unknown[]) : [];
  return c.name === RESTORE_CONTAINER && command[0] === EXECUTABLE && command[1] === 'restore';
}

/** The SHA-256 of the restore plan our init container in `pod` restores (its `--plan-sha256`): which restore put it there. */
export function restorePlanOf(pod: Pod): string | undefined {
  const command = (pod.spec?.initContainers ?? []).find(isRestoreContainer)?.command as unknown[] | undefined;
  const at = command?.indexOf('--plan-sha256') ?? -1;
  const sha = at >= 0 ? command?.[at + 1] : undefined;
  return typeof sha === 'string' ? sha : undefined;
}
