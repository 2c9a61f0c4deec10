/**
 * `prune`: the plugin's backup folders that Velero no longer has, found from the location's own
 * `backups/` folder in moto (authenticated), listed by default and removed with --delete; folders of
 * backups Velero has, recent folders and the restore plans are left alone.
 */
import { CreateBucketCommand, DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { pruneCommand } from '../../src/cli/commands/prune.js';
import { paths, requireComponents } from '../support/components.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startMoto, type Moto } from '../support/moto.js';
import { runCommand } from '../support/run-command.js';
import { cronJobPod } from '../support/schedules.js';

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
    // Velero has b10 and b2; b1 was deleted without the delete action (its tarball never arrived).
    // b1 is a prefix of b10: neither the judgement nor the removal may take one for the other.
    for (const b of ['b10', 'b2']) await put(`backups/${b}/velero-backup.json`, '{}');
    for (const b of ['b1', 'b10', 'b2']) {
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
    expect(scan.recent.map((f: { folder: string }) => f.folder).sort()).to.deep.equal([folder('logging', 'vlogs', 'b1'), folder('monitoring', 'vmsingle', 'b1')]);
    const kept = (await moto.keys('cluster-a/plugins/victoria/')).filter((k) => /\/b(10|2)\//.test(k));
    expect(kept, 'the folders of b10 and b2: a marker and a part each').to.have.length(8);

    // Two days later, in process (the clock moved forward): b1's two folders are left over.
    const saved = { ...process.env };
    Object.assign(process.env, s3env);
    try {
      let out = '';
      const later = () => new Date(Date.now() + 2 * 86_400_000);
      expect(await pruneCommand(['--location', root(), ...s3flags], { now: later, stdout: (t) => (out += t) })).to.equal(0);
      expect(out).to.match(/^left over {2}logging\/vlogs\/b1 {2}2 objects {2}1002 B {2}last written 20/m).and.match(/^left over {2}monitoring\/vmsingle\/b1 /m);
      expect(out).not.to.match(/b10|b2/);
      expect(out).to.include('2 left-over backup folder(s), 2.0 KiB; 4 folder(s) of backups Velero has; run with --delete to remove the left-over ones');
      expect(await moto.keys(`cluster-a/${folder('monitoring', 'vmsingle', 'b1')}/`), 'a listing removes nothing').to.have.length(2);

      out = '';
      expect(await pruneCommand(['--location', root(), '--delete', ...s3flags], { now: later, stdout: (t) => (out += t) })).to.equal(0);
      expect(out).to.include('2 left-over backup folder(s), 2.0 KiB removed; 4 folder(s) of backups Velero has were left alone');
    } finally {
      process.env = saved;
    }
    const keys = await moto.keys('cluster-a/');
    expect(keys.filter((k) => k.includes('/b1/')), 'b1 removed').to.deep.equal([]);
    expect(keys.filter((k) => /\/b(10|2)\//.test(k) && k.includes('plugins/')), 'b10 and b2 untouched').to.deep.equal(kept);
    expect(keys).to.include.members(['cluster-a/backups/b10/velero-backup.json', 'cluster-a/plugins/victoria/_restore-plans/uid-1/monitoring.vm-0.json']);
  });

  it('refuses a root without Velero backups (a folder inside the location), removing nothing', async () => {
    const wrong = await cli(['prune', '--location', `${root()}/plugins/victoria`, '--delete', ...s3flags], s3env);
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.include(
      `/cluster-a/plugins/victoria/backups/ holds no Velero backup: give the storage location's bucket and prefix (the folder that holds backups/ and plugins/), not a folder inside it; ` +
        'if every Velero backup of this location has been deleted, add --allow-no-velero-backups',
    );
    const usage = await cli(['prune', '--location', root(), '--min-age', 'soon', ...s3flags], s3env);
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.include('--min-age "soon" is not a duration such as 24h, 90m or 7d');
    const path = await cli(['prune', '--location', '/var/backups', ...s3flags], s3env);
    expect(path.status).to.equal(2);
    expect(path.stderr).to.include('--location "/var/backups" is not a storage location: expected s3://bucket[/prefix] or file:///abs/dir');
    expect(await moto.keys(`cluster-a/${folder('monitoring', 'vmsingle', 'b10')}/`)).to.have.length(2);
  });

  /** In process, two days on, with moto's credentials: the exit code and what it printed. */
  const pruneLater = async (args: string[]): Promise<{ code: number; out: string }> => {
    const saved = { ...process.env };
    Object.assign(process.env, s3env);
    let out = '';
    try {
      const code = await pruneCommand(args, { now: () => new Date(Date.now() + 2 * 86_400_000), stdout: (t) => (out += t) });
      return { code, out };
    } finally {
      process.env = saved;
    }
  };

  it('the weekly CronJob of schedules/prune-cronjob.yaml, as written but for its placeholders, removes a left-over folder with Velero\'s credentials file', async () => {
    const pod = cronJobPod('prune-cronjob.yaml');
    const [container] = pod.containers;
    const [mount] = container!.volumeMounts ?? [];
    expect(pod.volumes?.find((v) => v.name === mount!.name)?.secret?.secretName, "Velero's credentials Secret").to.equal('cloud-credentials');

    // The Secret's key `cloud`, as `velero install --secret-file` stores it, where the volume mounts it.
    const secretDir = mkdtempSync(join(tmpdir(), 'prune-cronjob-'));
    writeFileSync(join(secretDir, 'cloud'), `[default]\naws_access_key_id=${moto.accessKeyId}\naws_secret_access_key=${moto.secretAccessKey}\n`);
    const env = Object.fromEntries((container!.env ?? []).map((e) => [e.name, e.value.replace(mount!.mountPath, secretDir)]));
    // The placeholders as the comment says: the location, its region, moto's endpoint (an
    // S3-compatible server); --min-age shortened so that the folders written here are old enough.
    const value = (flag: string) => container!.args.indexOf(flag) + 1;
    const args = [...container!.args];
    expect(args[value('--location')]).to.equal('s3://BUCKET/PREFIX');
    args[value('--location')] = `s3://${moto.bucket}/cluster-w`;
    args[value('--region')] = moto.region;
    args[value('--min-age')] = '1s';
    args.push('--s3-endpoint', moto.endpoint);
    expect(args).to.include('--delete');

    const putW = (key: string) => moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: `cluster-w/${key}`, Body: 'x' }));
    await putW('backups/w1/velero-backup.json');
    for (const b of ['w0', 'w1']) await putW(`${folder('monitoring', 'vmsingle', b)}/victoria_complete.ignore`);
    await new Promise((r) => setTimeout(r, 1100));

    // Only what the Job's container has: no AWS_* variables but the manifest's.
    const r = await runCommand(paths.plugin, args, { PATH: process.env.PATH, HOME: secretDir, ...env });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^removed {2}monitoring\/vmsingle\/w0 /m).and.include('1 left-over backup folder(s), 1 B removed; 1 folder(s) of backups Velero has were left alone');
    expect(await moto.keys(`cluster-w/${folder('monitoring', 'vmsingle', '')}`)).to.deep.equal([`cluster-w/${folder('monitoring', 'vmsingle', 'w1')}/victoria_complete.ignore`]);
    rmSync(secretDir, { recursive: true, force: true });
  });

  it('works on a location without a prefix (the bucket root), and with --allow-no-velero-backups on one whose backups are all gone', async () => {
    const bucket = 'no-prefix';
    await moto.client.send(new CreateBucketCommand({ Bucket: bucket }));
    const putRoot = (key: string) => moto.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    const keysIn = async (prefix: string) => ((await moto.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key);
    await putRoot('backups/b1/velero-backup.json');
    for (const b of ['b0', 'b1']) await putRoot(`${folder('monitoring', 'vmsingle', b)}/victoria_complete.ignore`);
    const removed = await pruneLater(['--location', `s3://${bucket}`, '--delete', ...s3flags]);
    expect(removed.code, removed.out).to.equal(0);
    expect(removed.out).to.match(/^removed {2}monitoring\/vmsingle\/b0 /m).and.include('1 left-over backup folder(s), 1 B removed; 1 folder(s) of backups Velero has were left alone');
    expect(await keysIn(folder('monitoring', 'vmsingle', ''))).to.deep.equal([`${folder('monitoring', 'vmsingle', 'b1')}/victoria_complete.ignore`]);

    // Velero's last backup deleted: refused unless told that is so.
    await moto.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'backups/b1/velero-backup.json' }));
    const refused = await pruneLater(['--location', `s3://${bucket}/`, '--delete', ...s3flags]).catch((err: Error) => ({ code: -1, out: err.message }));
    expect(refused.out).to.include(`s3://${bucket}/backups/ holds no Velero backup`);
    expect(await keysIn(folder('monitoring', 'vmsingle', ''))).to.have.length(1);
    const all = await pruneLater(['--location', `s3://${bucket}/`, '--delete', '--allow-no-velero-backups', '--json', ...s3flags]);
    expect(all.code, all.out).to.equal(0);
    expect(JSON.parse(all.out)).to.include({ location: `s3://${bucket}`, known: 0, deleted: 1 });
    expect(await keysIn('')).to.deep.equal([]);
  });

  it('reports what it removed, and which folder the store refused, when a removal fails midway; exit 1', async () => {
    // A location of its own, so that what the tests before left does not matter.
    const putB = (key: string, body: string | Buffer = 'x') => moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: `cluster-b/${key}`, Body: body }));
    const rootB = `s3://${moto.bucket}/cluster-b`;
    await putB('backups/b1/velero-backup.json');
    // Each folder a backup: its two complete markers (ours and vmbackup's) and its data, 111 B in all.
    const markers = ['victoria_complete.ignore', 'backup_complete.ignore'];
    const data = ['data/small/2026_11/part/index.bin', 'data/small/2026_11/part/values.bin'];
    const keysOf = (b: string, names: string[]) => names.map((n) => `cluster-b/${folder('monitoring', 'vmsingle', b)}/${n}`).sort();
    for (const b of ['b3', 'b4', 'b5']) {
      await putB(`${folder('monitoring', 'vmsingle', b)}/victoria_complete.ignore`);
      await putB(`${folder('monitoring', 'vmsingle', b)}/backup_complete.ignore`, Buffer.alloc(0));
      await putB(`${folder('monitoring', 'vmsingle', b)}/data/small/2026_11/part/index.bin`, 'i'.repeat(10));
      await putB(`${folder('monitoring', 'vmsingle', b)}/data/small/2026_11/part/values.bin`, 'v'.repeat(100));
    }
    let deletes = 0;
    // A folder's deletion is two requests, its complete markers first. b3's both go through, and b4's
    // markers; the credentials may not delete after that, so b4's data request is refused.
    const proxy = await startFaultProxy({ target: moto.endpoint, rate: 1, weights: { error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 0, slow: 0, accessDenied403: 1 }, filter: ({ operation }) => operation === 'DeleteObjects' && ++deletes > 3 });
    try {
      const text = await pruneLater(['--location', rootB, '--delete', '--s3-endpoint', proxy.endpoint]);
      expect(text.code, text.out).to.equal(1);
      expect(text.out).to.match(/^removed {2}monitoring\/vmsingle\/b3 /m);
      expect(text.out).to.match(/^NOT removed \(.*AccessDenied.*\) {2}monitoring\/vmsingle\/b4 /m);
      expect(text.out).to.match(/^not tried {2}monitoring\/vmsingle\/b5 /m);
      expect(text.out).to.include(`1 of 3 left-over backup folder(s) removed (111 B of 333 B); the removal of ${folder('monitoring', 'vmsingle', 'b4')} failed, and the folders after it were not tried: run prune --delete again once the cause is fixed`);
      const json = await pruneLater(['--location', rootB, '--delete', '--json', '--s3-endpoint', proxy.endpoint]);
      expect(json.code).to.equal(1);
      const report = JSON.parse(json.out);
      expect(report).to.include({ deleted: 0 });
      expect(report.failed.folder).to.equal(folder('monitoring', 'vmsingle', 'b4'));
      expect(report.failed.error).to.match(/AccessDenied/);
    } finally {
      await proxy.close();
    }
    expect(deletes, 'requests: b3 markers, b3 data, b4 markers, b4 data (refused), and the second run\'s b4 data (refused)').to.equal(5);
    expect(await moto.keys(`cluster-b/${folder('monitoring', 'vmsingle', 'b3')}/`)).to.deep.equal([]);
    // Interrupted between its two requests, b4 has lost its complete markers and kept its data: an
    // incomplete backup that every reader refuses, never a complete-looking one with files missing.
    expect((await moto.keys(`cluster-b/${folder('monitoring', 'vmsingle', 'b4')}/`)).sort()).to.deep.equal(keysOf('b4', data));
    expect((await moto.keys(`cluster-b/${folder('monitoring', 'vmsingle', 'b5')}/`)).sort(), 'b5 not tried').to.deep.equal(keysOf('b5', [...markers, ...data]));
  });

  it('works on a file:// location too, and refuses the file system root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prune-file-'));
    const write = (key: string) => {
      mkdirSync(dirname(join(dir, key)), { recursive: true });
      writeFileSync(join(dir, key), 'x');
    };
    // Velero has b10, not b1: the removal of b1 leaves b10, whose name it begins.
    write('backups/b10/velero-backup.json');
    for (const b of ['b1', 'b10']) write(`${folder('monitoring', 'vmsingle', b)}/victoria_complete.ignore`);
    const done = await pruneLater(['--location', pathToFileURL(dir).href, '--delete']);
    expect(done.code, done.out).to.equal(0);
    expect(done.out).to.match(/^removed {2}monitoring\/vmsingle\/b1 /m).and.include('1 left-over backup folder(s), 1 B removed; 1 folder(s) of backups Velero has were left alone');
    expect(existsSync(join(dir, folder('monitoring', 'vmsingle', 'b1')))).to.equal(false);
    expect(existsSync(join(dir, folder('monitoring', 'vmsingle', 'b10'), 'victoria_complete.ignore'))).to.equal(true);
    const root = await pruneLater(['--location', 'file:///', '--delete']).catch((err: Error) => ({ code: -1, out: err.message }));
    expect(root.out).to.include('the file system root is not a backup location');
  });
});
