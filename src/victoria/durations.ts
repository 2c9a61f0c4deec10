/**
 * Durations written as a run of number–unit pairs (`1h30m`, `2w3d`, `500ms`): Go's and
 * Kubernetes' form, which VictoriaMetrics' flags extend with `d`, `w` and `y`. One reader for the
 * companion's and the drill's options and for the servers' `-retentionPeriod`.
 */

const DAY_MS = 86_400_000;

/** Go's units, and `d`, which Kubernetes users expect to work too. */
export const GO_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** VictoriaMetrics' flag units (lib/flagutil): also weeks and 365-day years. */
export const VICTORIA_UNITS_MS: Readonly<Record<string, number>> = { ...GO_UNITS_MS, w: 7 * DAY_MS, y: 365 * DAY_MS };

/** Milliseconds of `text` when all of it is number–unit pairs of `units` and the total is above zero; else undefined. */
export function durationMs(text: string, units: Readonly<Record<string, number>>): number | undefined {
  // Longest unit first, so `ms` is not read as `m` followed by junk.
  const names = Object.keys(units).sort((a, b) => b.length - a.length);
  const re = new RegExp(`(\\d+(?:\\.\\d+)?)(${names.join('|')})`, 'gy');
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    end = re.lastIndex;
  }
  return text !== '' && end === text.length && total > 0 ? total : undefined;
}
