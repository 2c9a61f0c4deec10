/**
 * The standalone CLI, end to end with real components: VictoriaMetrics 1.145 and 1.79.5, moto in
 * authenticated mode, stock vmrestore of the same version, and the VictoriaLogs test server. What
 * matters is checked: the restored database answers with the same series and sample counts.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { lockHolderOf } from '../../src/engine/db-lock.js';
import { MetricsSource, LogsSource } from '../../src/victoria/index.js';
import { paths, requireComponents } from '../support/components.js';
import { runCommand } from '../support/run-command.js';
import { writeSmallBackup } from '../support/store-helpers.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startMoto, type Moto } from '../support/moto.js';
import { startVictoriaMetrics, VM_VERSIONS, type ImportedData, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs } from '../support/victorialogs.js';

const run = (bin: string, args: string[], env: NodeJS.ProcessEnv = {}) => runCommand(bin, args, { ...process.env, ...env });
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(paths.plugin, args, env);

describe('CLI backup → stock vmrestore / our restore, against moto', function () {
  let moto: Moto;
  let s3env: NodeJS.ProcessEnv;
  let s3flags: string[];

  before(async function () {
    requireComponents(this, paths.plugin);
    moto = await startMoto();
    s3env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
    // moto fails the SDK's response checksum on copies of multipart objects.
    s3flags = ['--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''];
  });
  after(async () => moto?.stop());

  it('usage errors exit 2 naming the flag; what the server or the machine answers exits 1, with advice in flag terms', async () => {
    for (const [args, message] of [
      [['backup', '--kind', 'metrics', '--bogus'], /^velero-plugin-victoria backup: Unknown option '--bogus'.* \(velero-plugin-victoria backup --help lists the flags\)$/m],
      [['install-plugin', '--bogus'], /^velero-plugin-victoria install-plugin: Unknown option '--bogus'/],
      [['list', '--dst', '/tmp/nope', '--json'], /invalid store location "\/tmp\/nope": expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir/],
      [['list', '--dst', 's3://bkt/p', '--sse', 'foo'], /--sse must be one of/],
      [['verify', '--src', 's3://bkt/victoria'], /its last path segment is the backup's name.*list --dst s3:\/\/bkt\/victoria/],
      [['prune', '--location', 'file:///', '--min-age', '1h'], /the file system root is not a backup location/],
      [['prune', '--location', 's3://bkt/p', '--min-age', '0s'], /--min-age "0s": give a duration above zero/],
      [['list'], /--dst is required/],
      [['list', '--dst', 'file:///tmp/a', '--json', '--dst', 'file:///tmp/b'], /--dst is given more than once: give it once/],
      [['restore', '--plan-url', 'http://127.0.0.1:9/p', '--plan-sha256', 'xyz', '--data-dir', '/nonexistent'], /--plan-sha256 "xyz" is not a SHA-256/],
      [['restore', '--src', 'file:///tmp/a/b1', '--data-dir', '/nonexistent', '--chown', 'victoria', '--json'], /--chown "victoria" is not UID or UID:GID \(numbers, as runAsUser and runAsGroup name them\)/],
      [['restore', '--src', 'file:///tmp/a/b1', '--data-dir', '/nonexistent', '--chown', '1000:'], /--chown "1000:" is not UID or UID:GID/],
      // Refused before the database is asked for a snapshot (nothing listens at 127.0.0.1:9: asked, it would exit 1).
      [['backup', '--kind', 'metrics', '--url', 'http://127.0.0.1:9', '--data-dir', '/nonexistent', '--dst', 'file:///tmp/a', '--name', 'a/b', '--json'], /--name: backup name "a\/b" has a "\/"/],
      [['backup', '--kind', 'metrics', '--url', 'ftp://127.0.0.1:9', '--data-dir', '/nonexistent', '--dst', 'file:///tmp/a'], /--url: /],
      // An S3 option where it does nothing is refused, not ignored.
      [['list', '--dst', 'file:///tmp/a', '--region', 'eu-west-1', '--sse', 'AES256', '--json'], /--region, --sse are S3 options, and file:\/\/\/tmp\/a is not an s3:\/\/ location/],
      [['restore', '--plan-url', 'http://127.0.0.1:9/p', '--plan-sha256', 'a'.repeat(64), '--data-dir', '/nonexistent', '--s3-endpoint', 'http://x'], /--s3-endpoint: a restore from a plan reads through its presigned URLs/],
    ] as const) {
      const usage = await cli([...args]);
      expect(usage.status, args.join(' ')).to.equal(2);
      expect(usage.stderr).to.match(message);
      // With --json too, a usage error prints nothing on stdout (docs/cli.md).
      expect(usage.stdout, args.join(' ')).to.equal('');
    }
    // A failure prints one JSON object on stdout with --json, its error as on stderr, and exits 1.
    const unreachable = await cli(['backup', '--kind', 'metrics', '--url', 'http://127.0.0.1:9', '--data-dir', '/nonexistent', '--dst', `s3://${moto.bucket}/usage`, '--name', 'b1', '--json', ...s3flags], s3env);
    expect(unreachable.status).to.equal(1);
    expect(unreachable.stdout.split('\n')).to.have.length(2);
    const failed = unreachable.json();
    expect(failed).to.deep.equal({ backup: `s3://${moto.bucket}/usage/b1`, complete: false, kind: 'metrics', error: failed.error });
    expect(failed.error).to.match(/^VictoriaMetrics POST http:\/\/127\.0\.0\.1:9\/snapshot\/create: connection refused/);
    expect(unreachable.stderr).to.contain(`velero-plugin-victoria: ${failed.error}\n`);
    // What the server or the machine answers is a failure (1), with advice in flag terms.
    const noCredentials = { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' };
    const noKeys = await cli(['list', '--dst', `s3://${moto.bucket}/usage`, ...s3flags], noCredentials);
    expect(noKeys.status).to.equal(1);
    expect(noKeys.stderr).to.match(/no usable S3 credentials.*: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile/);
    expect(noKeys.stderr).to.contain('no usable S3 credentials: AWS_SHARED_CREDENTIALS_FILE /nonexistent does not exist');
    const closedPort = await cli(['list', '--dst', `s3://${moto.bucket}/usage`, '--s3-endpoint', 'http://127.0.0.1:9'], s3env);
    expect(closedPort.status).to.equal(1);
    expect(closedPort.stderr).to.match(/cannot reach .*: check the endpoint \(--s3-endpoint\) and the network/);
    const noCa = await cli(['list', '--dst', `s3://${moto.bucket}/usage`, ...s3flags, '--ca-cert-file', '/nonexistent/ca.pem'], s3env);
    expect(noCa.status).to.equal(1);
    expect(noCa.stderr).to.contain('the CA bundle --ca-cert-file ');
  });

  for (const version of VM_VERSIONS) {
    describe(`VictoriaMetrics ${version}`, () => {
      let vm: VmServer;
      let imported: ImportedData;
      const root = () => `s3://${moto.bucket}/vm${version.replace('.', '')}`;

      before(async function () {
        vm = await startVictoriaMetrics(this, { version, snapshotAuthKey: 'snap-key' });
        imported = await vm.importSeries(30, 200);
      });
      after(async () => vm?.stop());

      it('backs up, and stock vmrestore restores the same series and samples', async function () {
        const expected = await new MetricsSource({ url: vm.url }).counts();
        // The counts below are compared with the count's own answer: first, that answer is what was imported.
        expect(expected, 'the source database counts what was imported').to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
        const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', root(), '--name', 'b1', '--json', ...s3flags], s3env);
        expect(res.status, res.stderr).to.equal(0);
        const summary = res.json();
        expect(summary).to.include({ backup: `${root()}/b1`, complete: true, bytesCopied: 0 });
        expect(summary.files).to.be.greaterThan(3);
        expect(summary.counts).to.deep.equal({ series: expected.kind === 'metrics' ? expected.series : -1, samples: expected.kind === 'metrics' ? expected.samples : -1 });
        expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'snapshot deleted after the backup').to.equal(0);

        const restored = mkdtempSync(join(tmpdir(), 'vmrestore-'));
        const vr = await run(
          vm.bin.vmrestore,
          // Port 0: a free one, without the race between finding it and binding it.
          ['-httpListenAddr=127.0.0.1:0', `-src=s3://${moto.bucket}/vm${version.replace('.', '')}/b1`, `-storageDataPath=${restored}`, `-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'],
          s3env,
        );
        expect(vr.status, vr.stderr).to.equal(0);
        const copy = await startVictoriaMetrics(this, { version, dataDir: restored });
        try {
          expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal(expected);
        } finally {
          await copy.stop();
        }
      });

      it('restores with checksums into an empty directory, and the database starts with the same counts', async function () {
        const expected = await new MetricsSource({ url: vm.url }).counts();
        expect(expected, 'the source database counts what was imported').to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
        const target = join(mkdtempSync(join(tmpdir(), 'restore-')), 'data');
        const res = await cli(['restore', '--src', `${root()}/b1`, '--data-dir', target, '--json', ...s3flags], s3env);
        expect(res.status, res.stderr).to.equal(0);
        expect(res.json()).to.include({ verified: true });
        const copy = await startVictoriaMetrics(this, { version, dataDir: target });
        try {
          expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal(expected);
        } finally {
          await copy.stop();
        }
        // A second restore into the now non-empty directory is refused and changes nothing.
        const before = readdirSync(target).sort();
        const again = await cli(['restore', '--src', `${root()}/b1`, '--data-dir', target, ...s3flags], s3env);
        expect(again.status).to.equal(1);
        expect(again.stderr).to.match(/is not empty .*--replace/);
        expect(readdirSync(target).sort()).to.deep.equal(before);
      });

      it('an incremental backup after ~5% new data uploads only new files and verifies; --max-bytes-per-second paces the uploads', async () => {
        await vm.importSeries(2, 200, { metric: 'vpv_new' });
        const bad = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', root(), '--max-bytes-per-second', '10mb', ...s3flags], s3env);
        expect(bad.status, 'a usage error').to.equal(2);
        expect(bad.stderr).to.include('--max-bytes-per-second "10mb": give a number of bytes per second such as 52428800, 50MiB or 1.5GB');
        const res = await cli(
          ['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', root(), '--name', 'b2', '--max-bytes-per-second', '64KiB', '--json', ...s3flags],
          s3env,
        );
        expect(res.status, res.stderr).to.equal(0);
        const s = res.json();
        expect(s.basedOn).to.equal('b1');
        expect(s.bytesCopied).to.be.greaterThan(0);
        expect(s.bytesUploaded).to.be.lessThan(s.bytesTotal);
        expect(s.durationSeconds).to.be.at.least(s.bytesUploaded / 65_536 - 0.06);
        const list = (await cli(['list', '--dst', root(), '--json', ...s3flags], s3env)).json();
        expect(list.backups.map((b: { name: string; complete: boolean }) => [b.name, b.complete])).to.deep.equal([['b1', true], ['b2', true]]);
        // The counted range, which `companion verify --start/--end` takes after a restore.
        expect(list.backups[1].countedBefore).to.equal(s.countedBefore);
        expect(list.backups[1].countedFrom).to.equal(s.countedFrom ?? null);
        expect(list.backups[1].counts).to.deep.equal(s.counts);
        const v = await cli(['verify', '--src', `${root()}/b2`, '--json', ...s3flags], s3env);
        expect(v.status, v.stdout + v.stderr).to.equal(0);
      });

      it('an object of the base replaced at the same size in the bucket is uploaded again, not copied on (its ETag differs from the manifest\'s); the new backup verifies', async () => {
        const prefix = `vm${version.replace('.', '')}/`;
        const manifestOf = async (name: string) =>
          JSON.parse(await (await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: `${prefix}${name}/victoria_manifest.ignore` }))).Body!.transformToString()) as {
            trees: Array<{ files: Array<{ path: string; size: number; origin: string; etags?: string[] }> }>;
          };
        const b2 = await manifestOf('b2');
        const files = b2.trees[0]!.files;
        expect(files.every((f) => f.etags?.length === 1), 'every file has the ETag moto listed for it').to.equal(true);
        // The largest part file: in a settled part, so the next snapshot still has it.
        const victim = files.filter((f) => f.path.endsWith('/values.bin')).sort((a, b) => b.size - a.size)[0]!;
        const listed = await moto.client.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: `${prefix}b2/${victim.path}/` }));
        const key = listed.Contents![0]!.Key!;
        const body = Buffer.from(await (await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: key }))).Body!.transformToByteArray());
        await moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: key, Body: Buffer.alloc(body.length, 0x5a) }));

        const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', root(), '--name', 'b3', '--json', ...s3flags], s3env);
        expect(res.status, res.stderr).to.equal(0);
        const s = res.json();
        expect(s.basedOn).to.equal('b2');
        expect(s.copiesRefused.count).to.equal(1);
        expect(s.copiesRefused.first).to.include(`${key} was replaced since the base backup was written`);
        expect(res.stderr).to.match(/warning: 1 unchanged file was uploaded instead of copied server-side/);
        const b3 = await manifestOf('b3');
        expect(b3.trees[0]!.files.find((f) => f.path === victim.path)!.origin).to.equal('uploaded');
        expect(b3.trees[0]!.files.filter((f) => f.origin === 'copied').length, 'the rest copied').to.be.greaterThan(0);
        const v3 = await cli(['verify', '--src', `${root()}/b3`, '--json', ...s3flags], s3env);
        expect(v3.status, v3.stdout + v3.stderr).to.equal(0);
        // The base itself is damaged: verify names the file.
        const v2 = await cli(['verify', '--src', `${root()}/b2`, '--json', ...s3flags], s3env);
        expect(v2.status).to.equal(1);
        expect(v2.stdout + v2.stderr).to.include(victim.path);
      });
    });
  }

  it('a database that refuses to count: the backup completes with a warning and countsError; --no-counts does not ask', async function () {
    // The query limit a large production database hits: the count reads more samples than allowed.
    const vm = await startVictoriaMetrics(this, { version: '1.145', extraArgs: ['-search.maxSamplesPerQuery=100'] });
    try {
      await vm.importSeries(5, 200);
      const refused = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `s3://${moto.bucket}/nocount`, '--name', 'b1', '--json', ...s3flags], s3env);
      expect(refused.status, refused.stderr).to.equal(0);
      const summary = refused.json();
      expect(summary).to.include({ complete: true });
      expect(summary.counts).to.deep.equal({});
      expect(summary.countsError).to.match(/maxSamplesPerQuery/);
      expect(refused.stderr).to.match(/warning: the backup is complete, but the database could not count its data \(.*maxSamplesPerQuery.*\); restores of it are verified by checksums only/);
      const v = await cli(['verify', '--src', `s3://${moto.bucket}/nocount/b1`, '--json', ...s3flags], s3env);
      expect(v.status, v.stdout + v.stderr).to.equal(0);

      const skipped = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `s3://${moto.bucket}/nocount`, '--name', 'b2', '--no-counts', '--json', ...s3flags], s3env);
      expect(skipped.status, skipped.stderr).to.equal(0);
      expect(skipped.json().counts).to.deep.equal({});
      expect(skipped.json().countsError).to.equal(undefined);
      expect(skipped.stderr).not.to.match(/warning/);
      expect((await new MetricsSource({ url: vm.url }).list()).length, 'snapshots deleted').to.equal(0);
    } finally {
      await vm.stop();
    }
  });

  it('a wrong secret key fails clearly, without printing the secret', async function () {
    const vm = await startVictoriaMetrics(this, { version: '1.145' });
    try {
      await vm.importSeries(2, 10);
      const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `s3://${moto.bucket}/wrong`, ...s3flags], {
        ...s3env,
        AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789',
      });
      expect(res.status).to.equal(1);
      expect(res.stderr).to.match(/SignatureDoesNotMatch|secret access key/i);
      expect(res.stderr).not.to.contain('not-the-secret-0123456789');
      expect((await new MetricsSource({ url: vm.url }).list()).length, 'snapshot deleted after the failure').to.equal(0);
    } finally {
      await vm.stop();
    }
  });

  it('refuses a root at, inside or in the plugin folder of a Velero storage location, before any snapshot', async function () {
    const vm = await startVictoriaMetrics(this, { version: '1.145' });
    try {
      await moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: 'velero-bsl/backups/daily-1/velero-backup.json', Body: '{}' }));
      const backupTo = (dst: string) => cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', dst, ...s3flags], s3env);
      const fix = "Give the command line's backups a root outside every Velero storage location (another prefix or bucket)";
      const at = await backupTo(`s3://${moto.bucket}/velero-bsl`);
      expect(at.status, at.stderr).to.equal(2);
      expect(at.stderr).to.include(
        `--dst s3://${moto.bucket}/velero-bsl is the Velero storage location s3://${moto.bucket}/velero-bsl (its backups/ holds Velero backups): ` +
          `Velero marks a location that gets a top-level folder it does not know Unavailable, and stops backing up to it. ${fix}`,
      );
      const inside = await backupTo(`s3://${moto.bucket}/velero-bsl/cli/vm`);
      expect(inside.status, inside.stderr).to.equal(2);
      expect(inside.stderr).to.include(`is inside the Velero storage location s3://${moto.bucket}/velero-bsl (its backups/ holds Velero backups)`);
      const plugin = await backupTo(`s3://${moto.bucket}/elsewhere/plugins/victoria/monitoring/vm`);
      expect(plugin.status, plugin.stderr).to.equal(2);
      expect(plugin.stderr).to.include(`is inside the plugin's folder of a Velero storage location (plugins/victoria/), which holds the data of Velero backups: \`prune\` removes any backup there that no Velero backup names. ${fix}`);
      expect(await moto.keys('velero-bsl/'), 'nothing written').to.deep.equal(['velero-bsl/backups/daily-1/velero-backup.json']);
      expect(await moto.keys('elsewhere/')).to.deep.equal([]);
      const metrics = await (await fetch(`${vm.url}/metrics`)).text();
      expect(metrics, 'no snapshot was asked for').to.match(/^vm_http_requests_total\{path="\/snapshot\/create"\} 0$/m);
    } finally {
      await vm.stop();
    }
  });

  it('VictoriaLogs: every partition is backed up and restored with the same row counts (with both auth keys), by our restore and by stock vmrestore per partition', async function () {
    requireComponents(this, paths.vmrestore145);
    const vl = await startVictoriaLogs(this, { authKey: 'pm-key', forceFlushAuthKey: 'ff-key' });
    try {
      const ingested = await vl.ingest(3000, 3);
      const root = `s3://${moto.bucket}/vlogs`;
      const args = ['backup', '--kind', 'logs', '--url', vl.url, '--auth-key', 'pm-key', '--data-dir', vl.dataDir, '--dst', root, '--name', 'l1', '--json', ...s3flags];
      // The snapshots need a force flush first: without its key, the error names the option.
      const keyless = await cli(args, s3env);
      expect(keyless.status).to.equal(1);
      expect(keyless.stderr).to.match(/forceFlushAuthKey.*--force-flush-auth-key/);
      const res = await cli(args, { ...s3env, VICTORIA_FORCE_FLUSH_AUTH_KEY: 'ff-key' });
      expect(res.status, res.stderr).to.equal(0);
      expect(res.json().counts.rows).to.equal(ingested.rows);
      const target = join(mkdtempSync(join(tmpdir(), 'vl-restore-')), 'data');
      const r = await cli(['restore', '--src', `${root}/l1`, '--data-dir', target, ...s3flags], s3env);
      expect(r.status, r.stderr).to.equal(0);
      expect(readdirSync(join(target, 'partitions')).sort()).to.deep.equal(Object.keys(ingested.perDay).sort());
      const copy = await startVictoriaLogs(this, { dataDir: target });
      try {
        const counts = await new LogsSource({ url: copy.url }).counts();
        expect(counts).to.deep.include({ kind: 'logs', rows: ingested.rows, partitions: ingested.perDay });
      } finally {
        await copy.stop();
      }

      // docs/cli.md: stock vmrestore of each partition's tree into an empty staging directory,
      // moved to partitions/YYYYMMDD, gives the same database.
      const byVmrestore = join(mkdtempSync(join(tmpdir(), 'vl-vmrestore-')), 'data');
      mkdirSync(join(byVmrestore, 'partitions'), { recursive: true });
      for (const day of Object.keys(ingested.perDay)) {
        const staging = mkdtempSync(join(tmpdir(), `vl-vmrestore-${day}-`));
        const vr = await run(
          paths.vmrestore145,
          ['-httpListenAddr=127.0.0.1:0', `-src=${root}/l1/partitions/${day}`, `-storageDataPath=${staging}`, `-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'],
          s3env,
        );
        expect(vr.status, vr.stderr).to.equal(0);
        renameSync(staging, join(byVmrestore, 'partitions', day));
      }
      const stock = await startVictoriaLogs(this, { dataDir: byVmrestore });
      try {
        expect(await new LogsSource({ url: stock.url }).counts()).to.deep.include({ kind: 'logs', rows: ingested.rows, partitions: ingested.perDay });
      } finally {
        await stock.stop();
      }
    } finally {
      await vl.stop();
    }
  });
  describe('faults and interruptions (VictoriaMetrics 1.145)', () => {
    let vm: VmServer;
    let imported: ImportedData;
    let proxy: FaultProxy | undefined;
    const root = () => `s3://${moto.bucket}/faults`;
    const backup = (name: string, endpoint: string) =>
      ['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', root(), '--name', name, '--json', '--s3-endpoint', endpoint, '--checksum-algorithm', ''];

    before(async function () {
      vm = await startVictoriaMetrics(this, { version: '1.145' });
      imported = await vm.importSeries(40, 300);
    });
    afterEach(async () => {
      await proxy?.close();
      proxy = undefined;
    });
    after(async () => vm?.stop());

    it('a backup through 20% S3 faults (500, SlowDown, resets, slow answers) completes, verifies and restores the same counts', async function () {
      proxy = await startFaultProxy({ target: moto.endpoint, seed: 20261121, rate: 0.2, slowMs: 250, guarantee: ['PutObject', 'ListObjectsV2', 'GetObject'] });
      const expected = await new MetricsSource({ url: vm.url }).counts();
      expect(expected, 'the source database counts what was imported').to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
      const res = await cli(backup('through-faults', proxy.endpoint), s3env);
      expect(res.status, res.stderr).to.equal(0);
      expect(res.json()).to.include({ complete: true });
      // The retries are said on stderr (at most one line per reason every 10 s), never on the --json stdout.
      const retryLines = res.stderr.split('\n').filter((l) => l.startsWith('S3 retry'));
      expect(retryLines, res.stderr).not.to.deep.equal([]);
      for (const line of retryLines) {
        expect(line).to.match(/^S3 retry: attempt \d+ of 10 failed \(.+\)(, next attempt (at once|in \d+ ms|in \d+\.\d s))?(; \d+ more retries for this reason since its last line)?$|^S3 retries in all: \d+ \(.+\); \d+ of them not shown above$/);
      }
      expect(res.stdout.split('\n'), 'one JSON line').to.have.length(2);
      const verified = await cli(['verify', '--src', `${root()}/through-faults`, '--s3-endpoint', proxy.endpoint, '--checksum-algorithm', ''], s3env);
      expect(verified.status, verified.stdout + verified.stderr).to.equal(0);
      const target = join(mkdtempSync(join(tmpdir(), 'faults-restore-')), 'data');
      const restored = await cli(['restore', '--src', `${root()}/through-faults`, '--data-dir', target, '--s3-endpoint', proxy.endpoint, '--checksum-algorithm', ''], s3env);
      expect(restored.status, restored.stderr).to.equal(0);
      const c = proxy.counts;
      console.log(`      ${c.requests} requests, faults ${JSON.stringify(c.faults)}`);
      expect(proxy.totalFaults()).to.be.above(5);
      const copy = await startVictoriaMetrics(this, { version: '1.145', dataDir: target });
      try {
        expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal(expected);
      } finally {
        await copy.stop();
      }
    });

    it('restore --replace into the directory of a running database is refused, naming its process; the database keeps running', async () => {
      const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', root(), '--name', 'for-running', '--s3-endpoint', moto.endpoint], s3env);
      expect(res.status, res.stderr).to.equal(0);
      const before = readdirSync(vm.dataDir).sort();
      const refused = await cli(['restore', '--src', `${root()}/for-running`, '--data-dir', vm.dataDir, '--replace', '--s3-endpoint', moto.endpoint], s3env);
      expect(refused.status).to.equal(1);
      expect(refused.stderr).to.match(new RegExp(`data directory ${vm.dataDir.replace(/[/.]/g, '\\$&')} is in use by a running database \\(process ${vm.process.child.pid} holds its flock\\.lock\\): stop the database first`));
      expect(readdirSync(vm.dataDir).sort(), 'nothing moved aside').to.deep.equal(before);
      expect((await new MetricsSource({ url: vm.url }).counts()).series, 'the database still answers').to.be.greaterThan(0);
    });

    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`${signal} midway: the backup deletes its snapshot, says so and exits ${signal === 'SIGINT' ? 130 : 143}, with no complete marker`, async function () {
        proxy = await startFaultProxy({ target: moto.endpoint, rate: 1, weights: { slow: 1, error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 0 }, slowMs: 150 });
        const name = `interrupted-${signal}`;
        const child = spawn(paths.plugin, backup(name, proxy.endpoint), { env: { ...process.env, ...s3env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const closed = once(child, 'close');
        const s3 = moto.client;
        const written = async () => (await s3.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: `faults/${name}/` }))).KeyCount ?? 0;
        const deadline = Date.now() + 60_000;
        while ((await written()) < 3) {
          if (Date.now() > deadline) throw new Error('the backup wrote nothing within 60 s');
          await new Promise((r) => setTimeout(r, 50));
        }
        const source = new MetricsSource({ url: vm.url });
        expect((await source.list()).length, 'the snapshot exists while the backup runs').to.equal(1);
        // The answers to the uploads listed above (each slowed by 150 ms) have reached the backup,
        // so it has finished files to write down; the rest takes over a second longer.
        await new Promise((r) => setTimeout(r, 200));
        child.kill(signal);
        const [code] = (await closed) as [number | null];
        expect(code, stderr).to.equal(signal === 'SIGINT' ? 130 : 143);
        const resume = `stays incomplete: a backup with --name ${name} into the same --dst resumes it`;
        expect(stderr).to.contain(`${signal}: stopping; deleting snapshot(s) `);
        expect(stderr).to.contain(`; ${root()}/${name} ${resume}\n`);
        // --json: one object on stdout, as for any failure.
        expect(stdout.split('\n')).to.have.length(2);
        expect(JSON.parse(stdout)).to.deep.equal({ backup: `${root()}/${name}`, complete: false, kind: 'metrics', error: `stopped by ${signal}: ${root()}/${name} ${resume}` });
        expect(await source.list(), 'no snapshot left').to.deep.equal([]);
        const keys = (await s3.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: `faults/${name}/` }))).Contents?.map((o) => o.Key!) ?? [];
        expect(keys.filter((k) => k.endsWith('complete.ignore')), 'complete markers').to.deep.equal([]);
        expect(keys.filter((k) => k.includes('/victoria_journal_')), 'the files it finished are written down for a resume').to.have.length.greaterThan(0);
      });
    }

    it('a backup process killed midway leaves no complete marker; the next backup succeeds, restore refuses the broken one, and a re-run into its name resumes it', async function () {
      // The uploads of values.bin files held up, so that the kill lands while objects are being
      // written, after the journal's first segment (written every 2 s) names the files done.
      proxy = await startFaultProxy({
        target: moto.endpoint,
        rate: 1,
        weights: { slow: 1, error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 0 },
        slowMs: 30_000,
        filter: ({ method, url }) => method === 'PUT' && url.includes('/values.bin/'),
      });
      const child = spawn(paths.plugin, backup('killed', proxy.endpoint), { env: { ...process.env, ...s3env }, stdio: 'ignore' });
      const closed = once(child, 'close');
      const s3 = moto.client;
      const journal = async () => (await s3.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: 'faults/killed/victoria_journal_' }))).KeyCount ?? 0;
      const deadline = Date.now() + 60_000;
      while ((await journal()) < 1) {
        if (Date.now() > deadline) throw new Error('the backup wrote no journal within 60 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGKILL');
      await closed;
      const keys = (await s3.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: 'faults/killed/' }))).Contents?.map((o) => o.Key!) ?? [];
      expect(keys.length).to.be.greaterThan(0);
      expect(keys.filter((k) => k.endsWith('complete.ignore')), 'complete markers').to.deep.equal([]);
      // A killed process cannot delete its snapshot: the operator (or the companion's hooks) must.
      const source = new MetricsSource({ url: vm.url });
      await source.delete(await source.list());

      const next = await cli(backup('after-kill', moto.endpoint), s3env);
      expect(next.status, next.stderr).to.equal(0);
      // The newest complete backup of this root: neither the killed one nor the interrupted ones, all incomplete.
      expect(next.json().basedOn, 'an incomplete backup is never a base').to.equal('for-running');
      const list = (await cli(['list', '--dst', root(), '--json', '--s3-endpoint', moto.endpoint], s3env)).json();
      const states = Object.fromEntries(list.backups.map((b: { name: string; complete: boolean }) => [b.name, b.complete]));
      expect(states).to.deep.include({ killed: false, 'after-kill': true });
      const target = join(mkdtempSync(join(tmpdir(), 'killed-restore-')), 'data');
      const refused = await cli(['restore', '--src', `${root()}/killed`, '--data-dir', target, '--json', '--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''], s3env);
      expect(refused.status).to.equal(1);
      expect(refused.stderr).to.match(/incomplete|not complete/i);
      // With --json, one object on stdout: the backup, the data directory, and the error as on stderr.
      expect(refused.stdout.split('\n')).to.have.length(2);
      expect(refused.json()).to.deep.equal({ backup: `${root()}/killed`, dataDir: target, verified: false, error: refused.json().error });
      expect(refused.stderr).to.contain(`velero-plugin-victoria: ${refused.json().error}\n`);
      expect(existsSync(target) ? readdirSync(target) : [], 'nothing restored').to.deep.equal([]);
      const verified = await cli(['verify', '--src', `${root()}/killed`, '--json', '--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''], s3env);
      expect(verified.status).to.equal(1);
      expect(verified.json()).to.include({ ok: false });
      expect(verified.json().error).to.match(/killed is incomplete \(no victoria_complete\.ignore\)/);

      // The same command again resumes it: the files the killed run had written down stay.
      const resumed = await cli(backup('killed', moto.endpoint), s3env);
      expect(resumed.status, resumed.stderr).to.equal(0);
      const summary = resumed.json();
      expect(summary.complete).to.equal(true);
      expect(summary.resumed.files, 'files kept from the killed run').to.be.greaterThan(0);
      expect(summary.resumed.files).to.be.lessThan(summary.files);
      expect(summary.bytesUploaded + summary.bytesCopied + summary.resumed.bytes).to.equal(summary.bytesTotal);
      expect(await journal(), 'a complete backup holds no journal').to.equal(0);
      const ok = await cli(['verify', '--src', `${root()}/killed`, '--json', '--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''], s3env);
      expect(ok.json(), ok.stderr).to.include({ ok: true });
    });
  });
});

describe('counts inside the retention (VictoriaMetrics with -retentionPeriod=2d)', function () {
  for (const version of VM_VERSIONS) {
    it(`${version}: the backup counts from an hour inside the retention and records where; a restored copy with the drill retention counts the same range`, async function () {
      requireComponents(this, paths.plugin);
      const vm = await startVictoriaMetrics(this, { version, extraArgs: ['-retentionPeriod=2d'] });
      const dir = mkdtempSync(join(tmpdir(), 'retention-'));
      try {
        // Samples just inside the retention deadline (they fall behind it within minutes, so a
        // count from the first sample could never be repeated later) and samples well inside it.
        // Ten minutes inside: a merge drops samples behind the deadline, and the snapshot must
        // still hold them all on a slow machine.
        const deadline = Date.now() - 2 * 86400_000;
        await vm.importSeries(2, 60, { metric: 'vpv_edge', stepMs: 1000, endMs: deadline + 600_000 });
        const inside = await vm.importSeries(5, 100);
        const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `file://${dir}`, '--name', 'r1', '--json']);
        expect(res.status, res.stderr).to.equal(0);
        const summary = res.json();
        const from = Date.parse(summary.countedFrom);
        expect(from - deadline, 'an hour after the deadline when the count ran').to.be.within(3600_000, 3600_000 + 600_000);
        expect(summary.counts).to.deep.equal({ series: inside.series, samples: inside.samples });
        const manifest = JSON.parse(readFileSync(join(dir, 'r1', 'victoria_manifest.ignore'), 'utf8')) as { countedFrom: string; countedBefore: string; createdAt: string };
        expect(manifest.countedFrom).to.equal(summary.countedFrom);
        expect(manifest.countedBefore).to.equal(summary.countedBefore);
        expect(Date.parse(manifest.createdAt) - Date.parse(manifest.countedBefore), 'the count stops 5 minutes before the snapshot').to.equal(300_000);

        const target = join(mkdtempSync(join(tmpdir(), 'retention-restore-')), 'data');
        const restored = await cli(['restore', '--src', `file://${dir}/r1`, '--data-dir', target]);
        expect(restored.status, restored.stderr).to.equal(0);
        // As in a drill: the copy runs with 100 years' retention (startVictoriaMetrics' default), so it keeps every sample.
        const copy = await startVictoriaMetrics(this, { version, dataDir: target });
        try {
          const env = { VICTORIA_KIND: 'metrics', VICTORIA_URL: copy.url };
          const expect_ = JSON.stringify(summary.counts);
          const ok = await cli(['companion', 'verify', '--expect', expect_, '--start', manifest.countedFrom, '--end', manifest.countedBefore], env);
          expect(ok.status, ok.stderr).to.equal(0);
          expect(JSON.parse(ok.stdout.trim())).to.deep.include({ verify: 'ok' });
          // Counted from the first sample, the copy also shows the samples that were at the deadline.
          const all = await cli(['companion', 'verify', '--expect', expect_, '--end', manifest.countedBefore], env);
          expect(all.status).to.equal(1);
          expect(JSON.parse(all.stdout.trim()).found).to.deep.equal({ series: inside.series + 2, samples: inside.samples + 120 });
        } finally {
          await copy.stop();
        }
      } finally {
        await vm.stop();
      }
    });
  }
});

describe('CLI on file://', function () {
  it('backs up and restores through a local directory, and verify names a tampered file', async function () {
    requireComponents(this, paths.plugin);
    const vm = await startVictoriaMetrics(this, { version: '1.145' });
    try {
      const imported = await vm.importSeries(5, 20);
      const dir = mkdtempSync(join(tmpdir(), 'file-store-'));
      const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `file://${dir}`, '--name', 'f1', '--json']);
      expect(res.status, res.stderr).to.equal(0);
      expect(res.json().counts).to.deep.equal({ series: imported.series, samples: imported.samples });
      expect(existsSync(join(dir, 'f1', 'backup_complete.ignore'))).to.equal(true);
      const v = await cli(['verify', '--src', `file://${dir}/f1`]);
      expect(v.status, v.stdout).to.equal(0);
      // A restore into an empty directory: VictoriaMetrics starts on it with what was imported.
      const target = join(mkdtempSync(join(tmpdir(), 'file-restore-')), 'data');
      const restored = await cli(['restore', '--src', `file://${dir}/f1`, '--data-dir', target, '--json']);
      expect(restored.status, restored.stderr).to.equal(0);
      expect(restored.json()).to.include({ verified: true });
      const copy = await startVictoriaMetrics(this, { version: '1.145', dataDir: target });
      try {
        expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
      } finally {
        await copy.stop();
      }
      // A restore by a user who may not write in the data directory is refused, naming whose it is.
      const guarded = join(mkdtempSync(join(tmpdir(), 'not-mine-')), 'data');
      mkdirSync(guarded, { mode: 0o555 });
      chmodSync(dirname(guarded), 0o755);
      chmodSync(dir, 0o755);
      const asRoot = process.getuid!() === 0; // root writes anywhere: run as nobody then
      const denied = asRoot
        ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', paths.plugin, 'restore', '--src', `file://${dir}/f1`, '--data-dir', guarded])
        : await cli(['restore', '--src', `file://${dir}/f1`, '--data-dir', guarded]);
      expect(denied.status, denied.stderr).to.equal(1);
      const me = asRoot ? '65534:65534' : `${process.getuid!()}:${process.getgid!()}`;
      const owner = `${statSync(guarded).uid}:${statSync(guarded).gid}`;
      expect(denied.stderr).to.contain(`cannot write in data directory ${guarded} (EACCES: `);
      expect(denied.stderr).to.contain(`${guarded} is owned by ${owner} with mode 555, and this restore runs as ${me}: run it as the directory's owner or as root`);
      expect(readdirSync(guarded)).to.deep.equal([]);
      // Damage one part object in place.
      const { execFileSync } = await import('node:child_process');
      const victim = execFileSync('sh', ['-c', `find '${dir}/f1/data' -path '*index.bin/*' -type f | head -1`], { encoding: 'utf8' }).trim();
      execFileSync('sh', ['-c', `printf 'X' | dd of='${victim}' bs=1 seek=0 conv=notrunc 2>/dev/null`]);
      const bad = await cli(['verify', '--src', `file://${dir}/f1`]);
      expect(bad.status).to.equal(1);
      const rel = victim.slice(`${dir}/f1/`.length).replace(/\/[0-9A-F_]+$/, '');
      expect(bad.stdout).to.contain(`${rel}: SHA-256`);
      // With --json: one object, ok false, the bad file among its problems, and an error (also on stderr).
      const badJson = await cli(['verify', '--src', `file://${dir}/f1`, '--json']);
      expect(badJson.status).to.equal(1);
      expect(badJson.stdout.split('\n')).to.have.length(2);
      const verdict = badJson.json();
      expect(verdict).to.include({ backup: `file://${dir}/f1`, ok: false });
      expect(verdict.problems.map((p: { path: string }) => p.path)).to.deep.equal([rel]);
      expect(verdict.error).to.match(new RegExp(`: 1 of \\d+ file\\(s\\) failed verification \\(${rel.replace(/[.]/g, '\\.')}: SHA-256 `));
      expect(badJson.stderr).to.equal(`velero-plugin-victoria: ${verdict.error}\n`);
      // A root that is not there is said to be missing, not empty.
      const missing = await cli(['list', '--dst', `file://${dir}-typo`, '--json']);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.contain(`file://${dir}-typo does not exist: check --dst`);
      expect(missing.json()).to.deep.equal({ root: `file://${dir}-typo`, error: `file://${dir}-typo does not exist: check --dst` });
      // A backup, or a file, given as the root: said, not listed as a broken backup or an empty root.
      const backup = await cli(['list', '--dst', `file://${dir}/f1`]);
      expect(backup.status).to.equal(1);
      expect(backup.stderr).to.contain(`file://${dir}/f1 is itself a backup (it holds victoria_complete.ignore): list the folder above it, file://${dir}`);
      const file = await cli(['list', '--dst', `file://${victim}`]);
      expect(file.status).to.equal(1);
      expect(file.stderr).to.contain(`file://${victim} is a file, not a directory: check --dst`);
    } finally {
      await vm.stop();
    }
  });
});

describe('CLI restore --replace beside a database in a PID namespace of its own (another container)', function () {
  it('from the host its lock refuses the restore, naming its process; from a namespace of its own the restore cannot see it and says so, and moves the data aside', async function () {
    requireComponents(this, paths.plugin);
    const base = mkdtempSync(join(tmpdir(), 'pidns-'));
    await writeSmallBackup(base, { 'metadata/minTimestampForCompositeIndex': '12345678' });
    const dataDir = join(base, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'flock.lock'), '');
    writeFileSync(join(dataDir, 'live-part'), 'the running database\'s data');
    // The database: a process holding flock.lock, as VictoriaMetrics does, in a PID namespace of its own.
    const holder = spawn('unshare', ['--pid', '--fork', '--kill-child', 'flock', '-x', join(dataDir, 'flock.lock'), 'sleep', '120'], { stdio: 'ignore' });
    try {
      for (let i = 0; (await lockHolderOf(dataDir)) === undefined; i++) {
        if (i > 100) throw new Error('the lock holder in its own PID namespace did not take flock.lock within 10 s (unshare and flock from util-linux, as root)');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const restore = ['restore', '--src', `file://${base}/store/b1`, '--data-dir', dataDir, '--replace'];
      const fromHost = await cli(restore);
      expect(fromHost.status, fromHost.stderr).to.equal(1);
      expect(fromHost.stderr).to.match(/is in use by a running database \(process \d+ holds its flock\.lock\): stop the database first/);
      expect(readdirSync(dataDir).sort()).to.deep.equal(['flock.lock', 'live-part']);

      // As in a container: the kernel leaves the other namespace's lock out of /proc/locks.
      const inContainer = await run('unshare', ['--pid', '--fork', '--mount-proc', paths.plugin, ...restore]);
      expect(inContainer.status, inContainer.stderr).to.equal(0);
      expect(inContainer.stderr).to.contain(
        `warning: no database holds ${dataDir} as far as this process can see, but it runs in a PID namespace of its own (a container), where /proc/locks leaves out the locks of other containers: ` +
          'make sure no database in another pod or container runs on this directory, whose contents are about to be moved aside',
      );
      const aside = readdirSync(base).filter((e) => e.startsWith('data-replaced-'));
      expect(aside).to.have.length(1);
      expect(readFileSync(join(base, aside[0]!, 'live-part'), 'utf8'), 'moved aside, not deleted').to.equal("the running database's data");
      expect(readFileSync(join(dataDir, 'metadata', 'minTimestampForCompositeIndex'), 'utf8')).to.equal('12345678');
    } finally {
      holder.kill();
    }
  });
});

describe('CLI: snapshots the database cannot delete', function () {
  it('VictoriaLogs before v1.44 (no snapshot delete API): a complete backup exits 0 with a warning; a failed one keeps its own error', async function () {
    requireComponents(this, paths.plugin);
    const vl = await startVictoriaLogs(this, { legacySnapshotApi: true, postOnly: true });
    try {
      const ingested = await vl.ingest(300, 3);
      const dir = mkdtempSync(join(tmpdir(), 'file-store-'));
      const backup = (name: string, dataDir: string) =>
        cli(['backup', '--kind', 'logs', '--url', vl.url, '--data-dir', dataDir, '--dst', `file://${dir}`, '--name', name, '--json']);
      const res = await backup('g1', vl.dataDir);
      expect(res.status, res.stderr).to.equal(0);
      const summary = res.json();
      expect(summary.complete).to.equal(true);
      expect(summary.counts.rows).to.equal(ingested.rows);
      expect(summary.snapshotCleanupError).to.match(/^deleting the snapshot\(s\) .+ failed \(/);
      expect(res.stderr).to.contain("warning: the backup is complete, but deleting the snapshot(s)");
      expect(res.stderr).to.contain("delete them through the database's API");
      const v = await cli(['verify', '--src', `file://${dir}/g1`]);
      expect(v.status, v.stdout).to.equal(0);
      // The wrong data directory is the error, with the cleanup's failure after it.
      const wrong = await backup('g2', mkdtempSync(join(tmpdir(), 'not-vl-')));
      expect(wrong.status).to.equal(1);
      expect(wrong.stderr).to.match(/cannot read snapshot .*--data-dir must be the database's -storageDataPath on this machine; deleting the snapshot\(s\) .+ failed/);
    } finally {
      await vl.stop();
    }
  });
});
