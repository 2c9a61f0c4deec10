/**
 * Whether the restored pod's database can open the backup's data. VictoriaMetrics v1.90 changed its
 * storage format (`parts.json` per partition), and versions before it cannot open data written
 * since; neither database promises to read what a newer version wrote. A restore into an older
 * image completes, then the database fails to start, or worse, starts without the data: the action
 * says so before.
 *
 * The backup's version is its manifest's (from /metrics at backup time; Debian's builds report
 * none), else, for VictoriaMetrics, v1.90.0 when its files are in the new format. The pod's is its
 * database container's image tag: unknown for `latest`, a digest or a tag without a version, and
 * then nothing is said.
 */
import type { SourceKind } from '../engine/manifest.js';

type Version = [number, number, number];

const NEW_FORMAT: Version = [1, 90, 0];

/** The first vX.Y.Z (or X.Y.Z) in `text`. */
export function parseVersion(text: string): Version | undefined {
  const m = /(?:^|[^\d.])v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** The version in an image reference's tag (`victoriametrics/victoria-metrics:v1.79.5`); undefined for a digest or no tag. */
export function imageVersion(image: string): Version | undefined {
  const name = image.split('@')[0]!;
  const colon = name.lastIndexOf(':');
  // A colon before the last "/" is a registry's port, not a tag.
  if (colon < 0 || name.indexOf('/', colon) >= 0) return undefined;
  return parseVersion(name.slice(colon + 1));
}

const compare = (a: Version, b: Version): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
const show = (v: Version): string => `v${v.join('.')}`;

/** What the backup's data needs at least, and how that is known. */
function writtenBy(kind: SourceKind, version: string | undefined, files: string[]): { version: Version; known: string } | undefined {
  const stated = version ? parseVersion(version) : undefined;
  if (stated) return { version: stated, known: `was written by ${kind === 'metrics' ? 'VictoriaMetrics' : 'VictoriaLogs'} ${show(stated)}` };
  if (kind === 'metrics' && files.some((f) => f.endsWith('/parts.json'))) return { version: NEW_FORMAT, known: 'is in the storage format of VictoriaMetrics v1.90 and later (parts.json)' };
  return undefined;
}

/**
 * Why the restored database cannot be trusted to open the backup, in words for the restore log;
 * undefined when its image is as new as the data, or either version is unknown.
 */
export function olderDatabaseProblem(kind: SourceKind, backup: { version?: string; files: string[] }, image: string | undefined): string | undefined {
  const target = image ? imageVersion(image) : undefined;
  const data = writtenBy(kind, backup.version, backup.files);
  if (!target || !data || compare(target, data.version) >= 0) return undefined;
  const why =
    kind === 'metrics' && compare(target, NEW_FORMAT) < 0 && compare(data.version, NEW_FORMAT) >= 0
      ? 'VictoriaMetrics before v1.90 cannot open data written by v1.90 or later (the storage format changed), so it will not start on the restored data'
      : `${kind === 'metrics' ? 'VictoriaMetrics' : 'VictoriaLogs'} does not promise to read data a newer version wrote`;
  return `its data ${data.known}, and the restored pod runs ${image}, which is older: ${why}; run ${show(data.version)} or later in the restored pod (a Velero resource modifier on the Restore can change the image)`;
}
