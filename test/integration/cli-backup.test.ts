/**
 * The standalone CLI, end to end with real components: VictoriaMetrics 1.145 and 1.79.5, moto in
 * authenticated mode, stock vmrestore of the same version, and the VictoriaLogs test server. What
 * matters is checked: the restored database answers with the same series and sample counts.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsSource, LogsSource } from '../../src/victoria/index.js';
import { freePort } from '../../src/victoria/local-server.js';
import { paths, requireComponents } from '../support/components.js';
import { startMoto, type Moto } from '../support/moto.js';
import { startVictoriaMetrics, VM_VERSIONS, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs } from '../support/victorialogs.js';

/**
 * Runs the built executable. Asynchronously on purpose: moto is a child of this process and logs
 * every request into a pipe; a blocking spawnSync would stop us reading it, and moto would stall.
 */
async function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout, stderr, json: () => JSON.parse(stdout.trim().split('\n').at(-1)!) };
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(paths.plugin, args, env);

describe('CLI backup → stock vmrestore / our restore, against moto', function () {
  let moto: Moto;
  let s3env: NodeJS.ProcessEnv;
  let s3flags: string[];

  before(async function () {
    requireComponents(this, paths.plugin);
    moto = await startMoto();
    s3env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
    // moto fails the SDK's response checksum on copies of multipart objects (test-components §5.4).
    s3flags = ['--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''];
  });
  after(async () => moto?.stop());

  for (const version of VM_VERSIONS) {
    describe(`VictoriaMetrics ${version}`, () => {
      let vm: VmServer;
      const root = () => `s3://${moto.bucket}/vm${version.replace('.', '')}`;

      before(async function () {
        vm = await startVictoriaMetrics(this, { version, snapshotAuthKey: 'snap-key' });
        await vm.importSeries(30, 200);
      });
      after(async () => vm?.stop());

      it('backs up, and stock vmrestore restores the same series and samples', async function () {
        const expected = await new MetricsSource({ url: vm.url }).counts();
        const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', root(), '--name', 'b1', '--json', ...s3flags], s3env);
        expect(res.status, res.stderr).to.equal(0);
        const summary = res.json();
        expect(summary).to.include({ backup: `${root()}/b1`, complete: true, bytesCopied: 0 });
        expect(summary.files).to.be.greaterThan(3);
        expect(summary.counts).to.deep.equal({ series: expected.kind === 'metrics' ? expected.series : -1, samples: expected.kind === 'metrics' ? expected.samples : -1 });
        expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'snapshot deleted after the backup').to.equal(0);

        const restored = mkdtempSync(join(tmpdir(), 'vmrestore-'));
        const port = await freePort();
        const vr = await run(
          vm.bin.vmrestore,
          [`-httpListenAddr=127.0.0.1:${port}`, `-src=s3://${moto.bucket}/vm${version.replace('.', '')}/b1`, `-storageDataPath=${restored}`, `-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'],
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

      it('an incremental backup after ~5% new data uploads only new files and verifies', async () => {
        await vm.importSeries(2, 200, { metric: 'vpv_new' });
        const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', root(), '--name', 'b2', '--json', ...s3flags], s3env);
        expect(res.status, res.stderr).to.equal(0);
        const s = res.json();
        expect(s.basedOn).to.equal('b1');
        expect(s.bytesCopied).to.be.greaterThan(0);
        expect(s.bytesUploaded).to.be.lessThan(s.bytesTotal);
        const list = (await cli(['list', '--dst', root(), '--json', ...s3flags], s3env)).json();
        expect(list.backups.map((b: { name: string; complete: boolean }) => [b.name, b.complete])).to.deep.equal([['b1', true], ['b2', true]]);
        const v = await cli(['verify', '--src', `${root()}/b2`, '--json', ...s3flags], s3env);
        expect(v.status, v.stdout + v.stderr).to.equal(0);
      });
    });
  }

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

  it('VictoriaLogs: every partition is backed up and restored with the same row counts', async function () {
    const vl = await startVictoriaLogs(this, { authKey: 'pm-key' });
    try {
      const ingested = await vl.ingest(3000, 3);
      const root = `s3://${moto.bucket}/vlogs`;
      const res = await cli(['backup', '--kind', 'logs', '--url', vl.url, '--auth-key', 'pm-key', '--data-dir', vl.dataDir, '--dst', root, '--name', 'l1', '--json', ...s3flags], s3env);
      expect(res.status, res.stderr).to.equal(0);
      expect(res.json().counts.rows).to.equal(ingested.rows);
      const target = join(mkdtempSync(join(tmpdir(), 'vl-restore-')), 'data');
      const r = await cli(['restore', '--src', `${root}/l1`, '--data-dir', target, ...s3flags], s3env);
      expect(r.status, r.stderr).to.equal(0);
      expect(readdirSync(join(target, 'partitions')).sort()).to.deep.equal(Object.keys(ingested.perDay).sort());
      const copy = await startVictoriaLogs(this, { dataDir: target });
      try {
        const counts = await new LogsSource({ url: copy.url }).counts();
        expect(counts).to.deep.include({ rows: ingested.rows });
        if (counts.kind === 'logs') expect(counts.partitions).to.deep.equal(ingested.perDay);
      } finally {
        await copy.stop();
      }
    } finally {
      await vl.stop();
    }
  });
});

describe('CLI on file://', function () {
  it('backs up and restores through a local directory, and verify names a tampered file', async function () {
    requireComponents(this, paths.plugin);
    const vm = await startVictoriaMetrics(this, { version: '1.145' });
    try {
      await vm.importSeries(5, 20);
      const dir = mkdtempSync(join(tmpdir(), 'file-store-'));
      const res = await cli(['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', vm.dataDir, '--dst', `file://${dir}`, '--name', 'f1', '--json']);
      expect(res.status, res.stderr).to.equal(0);
      expect(existsSync(join(dir, 'f1', 'backup_complete.ignore'))).to.equal(true);
      const v = await cli(['verify', '--src', `file://${dir}/f1`]);
      expect(v.status, v.stdout).to.equal(0);
      // Damage one part object in place.
      const { execFileSync } = await import('node:child_process');
      const victim = execFileSync('sh', ['-c', `find '${dir}/f1/data' -path '*index.bin/*' -type f | head -1`], { encoding: 'utf8' }).trim();
      execFileSync('sh', ['-c', `printf 'X' | dd of='${victim}' bs=1 seek=0 conv=notrunc 2>/dev/null`]);
      const bad = await cli(['verify', '--src', `file://${dir}/f1`]);
      expect(bad.status).to.equal(1);
      const rel = victim.slice(`${dir}/f1/`.length).replace(/\/[0-9A-F_]+$/, '');
      expect(bad.stdout).to.contain(`${rel}: SHA-256`);
    } finally {
      await vm.stop();
    }
  });
});
