/** Entry point of the single executable (bundled by scripts/build.sh into a Node SEA). */
import { main } from './cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`velero-plugin-victoria: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
