/**
 * Where the real test components live, and the rule for when one is missing: with
 * REQUIRE_INTEGRATION=1 (CI) the test fails, naming the command that provides it; otherwise it is
 * skipped visibly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CACHE = join(ROOT, '.cache');

export const paths = {
  plugin: join(ROOT, 'dist', 'velero-plugin-victoria'),
  pluginLib: join(ROOT, 'dist', 'lib'),
  veleroHost: join(CACHE, 'go-build', 'bin', 'velero-host'),
  goAnchor: join(CACHE, 'go-build', 'bin', 'go-anchor-plugin'),
  node: join(CACHE, 'node', 'bin', 'node'),
  glibcRoot: join(CACHE, 'sea', 'glibc-root'),
  /** VictoriaMetrics 1.145 (sid) and 1.79.5 (bookworm), extracted from Debian, with vmbackup/vmrestore. */
  vm145: join(CACHE, 'vm145', 'usr', 'bin', 'victoria-metrics'),
  vmbackup145: join(CACHE, 'vm145', 'usr', 'bin', 'vmbackup'),
  vmrestore145: join(CACHE, 'vm145', 'usr', 'bin', 'vmrestore'),
  /** vmalert-tool 1.145 (same package): unit tests of schedules/alerts.yaml. */
  vmalertTool145: join(CACHE, 'vm145', 'usr', 'bin', 'vmalert-tool'),
  vm179: join(CACHE, 'vm179', 'usr', 'bin', 'victoria-metrics'),
  vmbackup179: join(CACHE, 'vm179', 'usr', 'bin', 'vmbackup'),
  vmrestore179: join(CACHE, 'vm179', 'usr', 'bin', 'vmrestore'),
  /** VictoriaLogs test server (test/victorialogs-server) on the real vendored lib/logstorage. */
  victoriaLogsServer: join(CACHE, 'go-build', 'bin', 'victorialogs-server'),
  /** moto 5.2.4 and its Python dependencies, extracted from Debian (run with /usr/bin/python3). */
  motoSitePackages: join(CACHE, 'moto', 'root', 'usr', 'lib', 'python3', 'dist-packages'),
  motoServer: join(CACHE, 'moto', 'root', 'usr', 'lib', 'python3', 'dist-packages', 'moto', 'server.py'),
  python3: '/usr/bin/python3',
  /** kubectl 1.36 (sid), extracted from Debian: `kubectl kustomize` of velero/ and schedules/. */
  kubectl: join(CACHE, 'kubectl', 'usr', 'bin', 'kubectl'),
};

const PROVIDERS: Record<string, string> = {
  [paths.plugin]: 'npm run build',
  [paths.pluginLib]: 'npm run build',
  [paths.veleroHost]: 'bash scripts/build-go.sh',
  [paths.goAnchor]: 'bash scripts/build-go.sh',
  [paths.node]: 'bash scripts/test-deps.sh node',
  [paths.glibcRoot]: 'bash scripts/test-deps.sh sea',
  [paths.vm145]: 'bash scripts/test-deps.sh vm',
  [paths.vmbackup145]: 'bash scripts/test-deps.sh vm',
  [paths.vmrestore145]: 'bash scripts/test-deps.sh vm',
  [paths.vmalertTool145]: 'bash scripts/test-deps.sh vm',
  [paths.vm179]: 'bash scripts/test-deps.sh vm',
  [paths.vmbackup179]: 'bash scripts/test-deps.sh vm',
  [paths.vmrestore179]: 'bash scripts/test-deps.sh vm',
  [paths.victoriaLogsServer]: 'bash scripts/build-go.sh',
  [paths.motoSitePackages]: 'bash scripts/test-deps.sh moto',
  [paths.motoServer]: 'bash scripts/test-deps.sh moto',
  [paths.python3]: 'apt-get install python3 (Debian 12: Python 3.11)',
  [paths.kubectl]: 'bash scripts/test-deps.sh kubectl',
};

export const integrationRequired = process.env.REQUIRE_INTEGRATION === '1';

/** Call in a before() hook: fail (CI) or skip when a component is missing. */
export function requireComponents(ctx: Mocha.Context, ...files: string[]): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length === 0) return;
  const how = missing.map((f) => `${f} (run: ${PROVIDERS[f] ?? 'scripts/test.sh'})`).join('; ');
  if (integrationRequired) throw new Error(`REQUIRE_INTEGRATION=1 and a real component is missing: ${how}`);
  console.warn(`skipping: missing ${how}`);
  ctx.skip();
}
