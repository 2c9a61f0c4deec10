/**
 * Entry point of the single executable (bundled by scripts/build.sh into a Node SEA). The companion
 * sidecar runs for its pod's whole life, so it loads only its own modules: the plugin's gRPC, S3
 * and Kubernetes clients would double its resident memory for nothing.
 */
import { redact } from './common/redact.js';

const args = process.argv.slice(2);
const run: Promise<number | undefined> =
  args[0] === 'companion'
    ? import('./companion/index.js').then((m) => m.companionCommand(args.slice(1)))
    : import('./cli/main.js').then((m) => m.main(args));

run.then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    // Library errors can quote what they failed on (a kubeconfig's lines, a request's headers).
    process.stderr.write(`velero-plugin-victoria: ${redact(err instanceof Error ? err.message : String(err))}\n`);
    process.exitCode = 1;
  },
);
