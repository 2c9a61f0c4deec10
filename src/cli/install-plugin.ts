/**
 * `install-plugin`: the image's default command. Velero's plugin init container (added by
 * `velero install --plugins` / `velero plugin add`) runs the image with no command and mounts the
 * shared plugins volume at /target; this copies the executable (0755) and its lib/ (0644) there.
 * The image has no shell or cp (distroless), so the executable copies itself.
 *
 * Files are written under a temporary name and renamed, so a Velero container that scans /plugins
 * while a restarted init container copies never sees a half-written executable.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const EXECUTABLE_NAME = 'velero-plugin-victoria';

function copyAtomically(from: string, to: string, mode: number): void {
  const tmp = join(dirname(to), `.${basename(to)}.tmp-${process.pid}`);
  copyFileSync(from, tmp);
  chmodSync(tmp, mode);
  renameSync(tmp, to);
}

/** Copy `executable` and the shared libraries beside it (in lib/) into `target`; returns what was written. */
export function installPlugin(executable: string, target: string): string[] {
  if (!existsSync(target)) {
    throw new Error(`target directory ${target} does not exist: mount Velero's plugins volume there (velero plugin add does)`);
  }
  const written: string[] = [];
  const dest = join(target, EXECUTABLE_NAME);
  copyAtomically(executable, dest, 0o755);
  written.push(dest);
  const libs = join(dirname(executable), 'lib');
  if (existsSync(libs)) {
    mkdirSync(join(target, 'lib'), { recursive: true, mode: 0o755 });
    for (const name of readdirSync(libs)) {
      // No exec bit: Velero would try to run an executable library as a plugin and fail to start.
      const to = join(target, 'lib', name);
      copyAtomically(join(libs, name), to, 0o644);
      written.push(to);
    }
  }
  return written;
}
