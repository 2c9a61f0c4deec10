/** The CLI keeps its backups out of Velero storage locations (cli/velero-location.ts), on file:// roots. */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOutsideVeleroLocation } from '../../src/cli/velero-location.js';
import { UsageError } from '../../src/common/usage-error.js';
import { openStore } from '../../src/store/url.js';

describe('CLI backup roots and Velero storage locations', () => {
  const base = mkdtempSync(join(tmpdir(), 'velero-location-'));
  mkdirSync(join(base, 'bsl/backups/daily-1'), { recursive: true });
  writeFileSync(join(base, 'bsl/backups/daily-1/velero-backup.json'), '{}');
  // A folder named backups that is not Velero's: no velero-backup.json in its folders.
  mkdirSync(join(base, 'mine/backups/2026'), { recursive: true });
  writeFileSync(join(base, 'mine/backups/2026/notes.txt'), 'x');
  const check = (path: string) => checkOutsideVeleroLocation(`file://${join(base, path)}`, (root) => openStore(root));
  const refusal = async (path: string) => ((await check(path).then(() => undefined, (e: unknown) => e)) as Error | undefined);

  it('refuses the location itself and any folder inside it, naming the location', async () => {
    const at = await refusal('bsl');
    expect(at).to.be.instanceOf(UsageError);
    expect(at?.message).to.match(new RegExp(`is the Velero storage location file://${base}/bsl \\(its backups/ holds Velero backups\\)`));
    expect((await refusal('bsl/cli/vm'))?.message).to.match(new RegExp(`is inside the Velero storage location file://${base}/bsl `));
  });

  it('refuses any root below a plugins/victoria/ folder, without looking', async () => {
    expect((await refusal('elsewhere/plugins/victoria/ns/vm'))?.message).to.match(/inside the plugin's folder of a Velero storage location \(plugins\/victoria\/\)/);
  });

  it('checks the folders above a root whose directory names hold %, # or ?, kept escaped', async () => {
    mkdirSync(join(base, 'a%b#c?d/backups/daily-1'), { recursive: true });
    writeFileSync(join(base, 'a%b#c?d/backups/daily-1/velero-backup.json'), '{}');
    const err = (await checkOutsideVeleroLocation(`file://${base}/a%25b%23c%3Fd/cli`, (root) => openStore(root)).catch((e: unknown) => e)) as Error;
    expect(err?.message).to.match(/is inside the Velero storage location file:\/\/.*\/a%25b%23c%3Fd \(its backups\/ holds Velero backups\)/);
    expect(await checkOutsideVeleroLocation(`file://${base}/a%25b/vm`, (root) => openStore(root))).to.equal(undefined);
  });

  it("accepts roots beside a location, under a backups/ folder that is not Velero's, and below folders it cannot read", async () => {
    expect(await refusal('cli/vm')).to.equal(undefined);
    expect(await refusal('mine/vm')).to.equal(undefined);
    // A folder above that cannot be listed (EACCES, or S3 credentials scoped to the root) is passed over.
    const unreadable = (root: string) => {
      const store = openStore(root);
      if (root === `file://${base}/locked/backups`) store.listDirectories = () => Promise.reject(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
      return store;
    };
    expect(await checkOutsideVeleroLocation(`file://${base}/locked/vm`, unreadable)).to.equal(undefined);
  });
});
