import { parseFlags } from '../../common/parse-flags.js';
import { IncompleteBackupError } from '../../engine/catalog.js';
import { verifyBackup } from '../../engine/verify.js';
import { formatBytes } from '../progress.js';
import { openStoreFromFlags, splitBackupPath, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { UsageError } from '../../common/usage-error.js';

export const VERIFY_USAGE = `velero-plugin-victoria verify --src ROOT/NAME [--json]

Reads every object of backup ROOT/NAME and checks sizes and SHA-256 against its manifest; names
every bad file. Exits 1 if any is bad or the backup cannot be opened (with --json, the object then
has "error").

${STORE_USAGE}`;

export async function verifyCommand(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: { src: { type: 'string' }, json: { type: 'boolean' }, ...STORE_FLAGS } });
  if (!values.src) throw new UsageError(`--src is required\n\n${VERIFY_USAGE}`);
  const { root, name } = splitBackupPath(values.src);
  const store = openStoreFromFlags(root, values);
  let res;
  try {
    res = await verifyBackup(store, name);
  } catch (err) {
    // A backup that cannot be opened (incomplete, not ours, damaged marker) fails verification too:
    // with --json, in the same one object, so that scripts read one shape.
    if (!values.json || !(err instanceof IncompleteBackupError)) throw err;
    process.stdout.write(`${JSON.stringify({ backup: `${store.location}/${name}`, ok: false, files: 0, bytesRead: 0, problems: [], error: err.message })}\n`);
    return 1;
  }
  const summary = { backup: `${store.location}/${name}`, ok: res.ok, files: res.files, bytesRead: res.bytes, problems: res.problems };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(`${res.ok ? 'OK' : 'FAILED'}: ${summary.backup}: ${res.files} files, ${formatBytes(res.bytes)} read\n`);
    for (const p of res.problems) process.stdout.write(`  ${p.path}: ${p.problem}\n`);
  }
  return res.ok ? 0 : 1;
}
