/**
 * Server version from `/metrics`: VictoriaMetrics and VictoriaLogs both export
 * `vm_app_version{version="…", short_version="v1.145.0"} 1`. Debian builds leave both labels empty,
 * and `/api/v1/status/buildinfo` reports a fake Prometheus version, so "unknown" is a normal answer
 * and nothing may depend on it.
 */
import type { HttpClient } from './http.js';

/** short_version, else version, else undefined; from the text of a /metrics page. */
export function parseAppVersion(metrics: string): string | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith('vm_app_version{'));
  if (!line) return undefined;
  const label = (name: string): string | undefined => {
    const m = new RegExp(`[{,]\\s*${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(line);
    return m?.[1] === undefined || m[1] === '' ? undefined : m[1];
  };
  return label('short_version') ?? label('version');
}

/**
 * The server's version from /metrics: undefined when /metrics answers without it or refuses (e.g.
 * protected by -metricsAuthKey); a connection error is thrown, for the caller to treat as best effort.
 */
export async function readVersion(http: HttpClient): Promise<string | undefined> {
  const res = await http.post('/metrics', {}, { method: 'GET' });
  if (res.status !== 200) return undefined;
  return parseAppVersion(res.body);
}
