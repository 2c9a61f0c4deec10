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
};

const PROVIDERS: Record<string, string> = {
  [paths.plugin]: 'npm run build',
  [paths.pluginLib]: 'npm run build',
  [paths.veleroHost]: 'bash scripts/build-go.sh',
  [paths.goAnchor]: 'bash scripts/build-go.sh',
  [paths.node]: 'bash scripts/test-deps.sh node',
  [paths.glibcRoot]: 'bash scripts/test-deps.sh sea',
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
