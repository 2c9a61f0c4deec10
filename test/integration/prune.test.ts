/**
 * `prune`: the plugin's backup folders that Velero no longer has, found from the location's own
 * `backups/` folder in moto (authenticated), listed by default and removed with --delete; folders of
 * backups Velero has, recent folders and the restore plans are left alone.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { pruneCommand } from '../../src/cli/commands/prune.js';
import { paths, requireComponents } from '../support/components.js';
import { startMoto, type Moto } from '../support/moto.js';
import { runCommand } from '../support/run-command.js';

const cli = (args: string[], env: NodeJS.ProcessEnv) => runCommand(paths.plugin, args, { ...process.env, ...env });

describe('prune: left-over backup folders, judged by the location\'s backups/ (moto)', function () {
  let moto: Moto;
  let s3env: NodeJS.ProcessEnv;
  let s3flags: string[];
  const root = () => `s3://${moto.bucket}/cluster-a`;
  const put = (key: string, body = 'x') => moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: `cluster-a/${key}`, Body: body }));
  const folder = (ns: string, workload: string, backup: string) => `plugins/victoria/${ns}/${workload}/${backup}`;

  before(async function () {
    requireComponents(this, paths.plugin);
    moto = await startMoto();
    s3env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
    s3flags = ['--s3-endpoint', moto.endpoint];
    // Velero has b1 and b2; b0 was deleted without the delete action (its tarball never arrived).
    for (const b of ['b1', 'b2']) await put(`backups/${b}/velero-backup.json`, '{}');
    for (const b of ['b0', 'b1', 'b2']) {
      for (const [ns, workload] of [['monitoring', 'vmsingle'], ['logging', 'vlogs']] as const) {
        await put(`${folder(ns, workload, b)}/victoria_complete.ignore`, '{}');
        await put(`${folder(ns, workload, b)}/data/small/2026_11/part/values.bin`, 'v'.repeat(1000));
      }
    }
    await put('plugins/victoria/_restore-plans/uid-1/monitoring.vm-0.json', '{}');
  });
  after(async () => moto?.stop());

  it('lists, and removes with --delete, only folders whose backup Velero no longer has and that are older than --min-age', async () => {
    // The built executable, default --min-age 24h: everything was just written, so nothing is left over yet.
    const listed = await cli(['prune', '--location', root(), '--json', ...s3flags], s3env);
    expect(listed.status, listed.stderr).to.equal(0);
    const scan = listed.json();
    expect(scan).to.include({ known: 4, bytes: 0, deleted: 0 });
    expect(scan.leftovers).to.deep.equal([]);
    expect(scan.recent.map((f: { folder: string }) => f.folder).sort()).to.deep.equal([folder('logging', 'vlogs', 'b0'), folder('monitoring', 'vmsingle', 'b0')]);

    // Two days later, in process (the clock moved forward): b0's two folders are left over.
    const saved = { ...process.env };
    Object.assign(process.env, s3env);
    try {
      let out = '';
      const later = () => new Date(Date.now() + 2 * 86_400_000);
      expect(await pruneCommand(['--location', root(), ...s3flags], { now: later, stdout: (t) => (out += t) })).to.equal(0);
      expect(out).to.match(/^left over {2}logging\/vlogs\/b0 {2}2 objects {2}1002 B {2}last written 20/m).and.match(/^left over {2}monitoring\/vmsingle\/b0 /m);
      expect(out).to.include('2 left-over backup folder(s), 2.0 KiB; 4 folder(s) of backups Velero has; run with --delete to remove the left-over ones');
      expect(await moto.keys(`cluster-a/${folder('monitoring', 'vmsingle', 'b0')}/`), 'a listing removes nothing').to.have.length(2);

      out = '';
      expect(await pruneCommand(['--location', root(), '--delete', ...s3flags], { now: later, stdout: (t) => (out += t) })).to.equal(0);
      expect(out).to.include('2 left-over backup folder(s), 2.0 KiB removed; 4 folder(s) of backups Velero has were left alone');
    } finally {
      process.env = saved;
    }
    const keys = await moto.keys('cluster-a/');
    expect(keys.filter((k) => k.includes('/b0/')), 'b0 removed').to.deep.equal([]);
    expect(keys.filter((k) => /\/b[12]\//.test(k) && k.includes('plugins/')), 'b1 and b2 untouched').to.have.length(8);
    expect(keys).to.include.members(['cluster-a/backups/b1/velero-backup.json', 'cluster-a/plugins/victoria/_restore-plans/uid-1/monitoring.vm-0.json']);
  });

  it('refuses a root without Velero backups (a folder inside the location), removing nothing', async () => {
    const wrong = await cli(['prune', '--location', `${root()}/plugins/victoria`, '--delete', ...s3flags], s3env);
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.include(`/cluster-a/plugins/victoria/backups/ holds no Velero backup: give the storage location's bucket and prefix (the folder that holds backups/ and plugins/), not a folder inside it`);
    const usage = await cli(['prune', '--location', root(), '--min-age', 'soon', ...s3flags], s3env);
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.include('--min-age "soon" is not a duration such as 24h, 90m or 7d');
    expect(await moto.keys(`cluster-a/${folder('monitoring', 'vmsingle', 'b1')}/`)).to.have.length(2);
  });
});
