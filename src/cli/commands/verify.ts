import { parseFlags } from '../../common/parse-flags.js';
import { verifyBackup } from '../../engine/verify.js';
import { formatBytes } from '../progress.js';
import { openStoreFromFlags, splitBackupPath, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { UsageError } from '../../common/usage-error.js';
import { jsonOnFailure } from '../json-failure.js';

export const VERIFY_USAGE = `velero-plugin-victoria verify --src ROOT/NAME [--json]

Reads every object of backup ROOT/NAME and checks sizes and SHA-256 against its manifest; names
every bad file. Exits 1 if any is bad or the backup cannot be opened (with --json, the object then
has "ok": false and "error").

${STORE_USAGE}`;

export async function verifyCommand(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: { src: { type: 'string' }, json: { type: 'boolean' }, ...STORE_FLAGS } });
  if (!values.src) throw new UsageError(`--src is required\n\n${VERIFY_USAGE}`);
  const { root, name } = splitBackupPath(values.src);
  const json = Boolean(values.json);
  // As the store names itself once it is open; until then as given.
  let backup = `${root}/${name}`;
  // A backup that cannot be opened (incomplete, not ours, damaged marker), or a store that does
  // not answer, fails verification too: with --json, in the shape of a verification, so that
  // scripts read one shape.
  const res = await jsonOnFailure(json, () => ({ backup, ok: false, files: 0, bytesRead: 0, problems: [] }), async () => {
    const store = openStoreFromFlags(root, values);
    backup = `${store.location}/${name}`;
    return verifyBackup(store, name);
  });
  const summary = { backup, ok: res.ok, files: res.files, bytesRead: res.bytes, problems: res.problems };
  if (json) {
    // Every failed command's object has an error, as on stderr; the bad files are in problems.
    const first = res.problems[0];
    const error = first && `${backup}: ${res.problems.length} of ${res.files} file(s) failed verification (${first.path}: ${first.problem}${res.problems.length > 1 ? '; …' : ''})`;
    process.stdout.write(`${JSON.stringify({ ...summary, ...(error ? { error } : {}) })}\n`);
    if (error) process.stderr.write(`velero-plugin-victoria: ${error}\n`);
  } else {
    process.stdout.write(`${res.ok ? 'OK' : 'FAILED'}: ${summary.backup}: ${res.files} files, ${formatBytes(res.bytes)} read\n`);
    for (const p of res.problems) process.stdout.write(`  ${p.path}: ${p.problem}\n`);
  }
  return res.ok ? 0 : 1;
}
