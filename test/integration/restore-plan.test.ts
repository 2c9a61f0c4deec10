/**
 * The restore init container's path end to end: the built executable backs up a real
 * VictoriaMetrics 1.145 into moto, a restore plan is built in-process (presigned against moto, as
 * the restore action does) and written into the bucket, and `restore --plan-url … --plan-sha256 …`
 * (no credentials in its environment) restores it; the database then answers with the same series
 * and sample counts. A non-empty target, a tampered plan and an expired plan are refused with their
 * messages, and no URL (nor any part of a signature) is ever printed.
 *
 * moto runs in NO-AUTH mode here (in auth mode it answers every presigned URL with HTTP 500,
 * KeyError HTTP_AUTHORIZATION), behind moto_presign_check.py, which
 * checks every presigned URL's signature, scope and expiry with botocore's signer. The first
 * tests show that check refusing what S3 refuses, so every restore here also proves the URLs the
 * plan carries are valid. The plan's own expiry (expiresAt) and SHA-256 are tested as well.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { request } from 'undici';
import { buildRestorePlan } from '../../src/engine/plan.js';
import { s3Presigner, type S3Presigner } from '../../src/store/s3-presign.js';
import { S3Store } from '../../src/store/s3.js';
import { MetricsSource } from '../../src/victoria/index.js';
import { paths, requireComponents } from '../support/components.js';
import { runCommand } from '../support/run-command.js';
import { readAll } from '../support/store-helpers.js';
import { startMoto, type Moto } from '../support/moto.js';
import { startVictoriaMetrics, type ImportedData, type VmServer } from '../support/victoria-metrics.js';

const run = (args: string[], env: NodeJS.ProcessEnv) => runCommand(paths.plugin, args, env);

/** Every path under `dir` with its size and mtime: "left untouched" means this is unchanged. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      out.push(`${relative(dir, p)} ${e.isDirectory() ? 'dir' : st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe('restore plan: `restore --plan-url` against moto and VictoriaMetrics 1.145', function () {
  let moto: Moto;
  let vm: VmServer;
  let imported: ImportedData;
  let backups: S3Store;
  let plans: S3Store;
  let presigner: S3Presigner;
  let signatures: string[];
  /** The init container's environment: no AWS credentials, nothing but PATH. */
  const bareEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

  before(async function () {
    this.timeout(300_000);
    requireComponents(this, paths.plugin);
    moto = await startMoto({ auth: false });
    vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'snap-key' });
    imported = await vm.importSeries(30, 200);
    const s3env = { ...process.env, AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
    const res = await run(
      ['backup', '--kind', 'metrics', '--url', vm.url, '--auth-key', 'snap-key', '--data-dir', vm.dataDir, '--dst', `s3://${moto.bucket}/victoria-backups/ns1/vm`, '--name', 'b1', '--json', '--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''],
      s3env,
    );
    expect(res.status, res.stderr).to.equal(0);
    const s3 = {
      ...moto.s3Options,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    };
    backups = new S3Store({ ...s3, bucket: moto.bucket, prefix: 'victoria-backups/ns1/vm' });
    plans = new S3Store({ ...s3, bucket: moto.bucket, prefix: 'victoria-backups/_restore-plans' });
    signatures = [];
    const base = s3Presigner(backups);
    presigner = {
      // Remember every signature handed out, to make sure none is ever printed.
      presign: async (key, seconds) => {
        const url = await base.presign(key, seconds);
        signatures.push(new URL(url).searchParams.get('X-Amz-Signature')!);
        return url;
      },
      destroy: () => base.destroy(),
    };
  });

  after(async () => {
    presigner?.destroy();
    backups?.destroy();
    plans?.destroy();
    await vm?.stop();
    await moto?.stop();
  });

  /** Builds a plan as the restore action does, writes it into the bucket; the init container's arguments. */
  async function planArgs(restore: string, opts: { now?: Date; expiresInSeconds?: number; tamper?: (b: Buffer) => Buffer } = {}) {
    const built = await buildRestorePlan({
      store: backups,
      backupName: 'b1',
      restore,
      expiresInSeconds: opts.expiresInSeconds ?? 3600,
      presign: (k, s) => presigner.presign(k, s),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const key = `uid-${restore}/ns1.vm-0.json`;
    const bytes = opts.tamper ? opts.tamper(built.bytes) : built.bytes;
    await plans.put(key, bytes, bytes.length);
    const planPresigner = s3Presigner(plans);
    try {
      const url = await planPresigner.presign(key, 3600);
      signatures.push(new URL(url).searchParams.get('X-Amz-Signature')!);
      return { built, url, args: ['--plan-url', url, '--plan-sha256', built.sha256] };
    } finally {
      planPresigner.destroy();
    }
  }

  /** No URL, no signature, no query string in anything the executable printed. */
  function expectNoUrl(out: { stdout: string; stderr: string }, url: string) {
    for (const text of [out.stdout, out.stderr]) {
      expect(text).to.not.include(url);
      expect(text).to.not.include(moto.endpoint);
      expect(text).to.not.match(/X-Amz-(Signature|Credential)|x-id=GetObject/i);
      for (const sig of signatures) expect(text).to.not.include(sig);
    }
  }

  describe('the presigned-URL check in front of moto refuses what S3 refuses', () => {
    /** A GET of `url` (optionally with another Host and a Range): the status, S3's error code, the body. */
    async function get(url: string, headers: Record<string, string> = {}) {
      const res = await request(url, { headers });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, code: /<Code>([^<]+)<\/Code>/.exec(body.toString())?.[1], body };
    }
    const withSignature = (url: string, f: (sig: string) => string) => {
      const u = new URL(url);
      u.searchParams.set('X-Amz-Signature', f(u.searchParams.get('X-Amz-Signature')!));
      return u.toString();
    };
    function otherStore(over: { region?: string; credentials?: { accessKeyId: string; secretAccessKey: string } }) {
      return new S3Store({ ...moto.s3Options, ...over, forcePathStyle: true, bucket: moto.bucket, prefix: 'victoria-backups/ns1/vm' });
    }
    async function presignWith(store: S3Store, key: string, seconds = 60, publicUrl?: string) {
      const p = s3Presigner(store, publicUrl ? { publicUrl } : {});
      try {
        return await p.presign(key, seconds);
      } finally {
        p.destroy();
        if (store !== backups) store.destroy();
      }
    }
    const key = 'b1/victoria_manifest.ignore';

    it('a valid URL reads the object, also a range of it; one changed byte of signature, key, expiry or host is refused', async () => {
      const expected = await readAll(await backups.get(key));
      const url = await presignWith(backups, key);
      const whole = await get(url);
      expect(whole.status).to.equal(200);
      expect(whole.body.equals(expected)).to.equal(true);
      const range = await get(url, { range: 'bytes=10-19' });
      expect(range.status).to.equal(206);
      expect(range.body.equals(expected.subarray(10, 20))).to.equal(true);

      const flipped = withSignature(url, (sig) => (sig[0] === '0' ? '1' : '0') + sig.slice(1));
      expect(await get(flipped)).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
      expect(await get(url.replace('/b1/victoria_manifest.ignore?', '/b1/backup_complete.ignore?'))).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
      expect(await get(url.replace('X-Amz-Expires=60', 'X-Amz-Expires=600'))).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
      expect(await get(url, { host: 'localhost' })).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
    });

    it('signed with another secret, by an unknown access key or for another region: refused', async () => {
      const wrongSecret = await presignWith(otherStore({ credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: 'not-the-secret' } }), key);
      expect(await get(wrongSecret)).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
      const unknownKey = await presignWith(otherStore({ credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: moto.secretAccessKey } }), key);
      expect(await get(unknownKey)).to.include({ status: 403, code: 'InvalidAccessKeyId' });
      const otherRegion = await presignWith(otherStore({ region: 'eu-west-1' }), key);
      expect(await get(otherRegion)).to.include({ status: 403, code: 'AuthorizationQueryParametersError' });
    });

    it('an expired URL is refused; one signed for publicUrl works at that address only', async () => {
      // X-Amz-Date has whole seconds: signed at s.990 with 1 s to live, the URL would expire 10 ms
      // later. Two seconds from the signing time it states keep the first GET valid.
      const shortLived = await presignWith(backups, key, 2);
      const signedAt = Date.parse(new URL(shortLived).searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
      expect(signedAt, 'X-Amz-Date').to.be.within(Date.now() - 2000, Date.now());
      expect((await get(shortLived)).status).to.equal(200);
      await new Promise((r) => setTimeout(r, signedAt + 2000 + 1100 - Date.now()));
      expect(await get(shortLived)).to.include({ status: 403, code: 'AccessDenied' });

      // The same server under another name, as pods reach it through publicUrl.
      const publicUrl = moto.endpoint.replace('127.0.0.1', 'localhost');
      const pub = await presignWith(backups, key, 60, publicUrl);
      expect(pub.startsWith(`${publicUrl}/`)).to.equal(true);
      expect((await get(pub)).status).to.equal(200);
      expect(await get(pub.replace(publicUrl, moto.endpoint))).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
    });
  });

  it('restores into an empty directory without credentials; VictoriaMetrics starts on it with the same counts', async function () {
    const expected = await new MetricsSource({ url: vm.url }).counts();
    // The counts below are compared with the count's own answer: first, that answer is what was imported.
    expect(expected, 'the source database counts what was imported').to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
    const { url, args, built } = await planArgs('restore-1');
    expect(Object.values(built.plan.objects).every((o) => o.url.startsWith(`${moto.endpoint}/${moto.bucket}/victoria-backups/ns1/vm/b1/`))).to.equal(true);
    const target = join(mkdtempSync(join(tmpdir(), 'plan-restore-')), 'data');
    const res = await run(['restore', ...args, '--data-dir', target, '--json'], bareEnv);
    expect(res.status, res.stderr).to.equal(0);
    expectNoUrl(res, url);
    expect(res.json()).to.include({ restore: 'restore-1', backup: 'b1', kind: 'metrics', verified: true, movedAside: null, directIo: true });
    expect(res.json().counts).to.deep.equal({ series: expected.kind === 'metrics' ? expected.series : -1, samples: expected.kind === 'metrics' ? expected.samples : -1 });
    const copy = await startVictoriaMetrics(this, { version: '1.145', dataDir: target });
    try {
      expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal(expected);
    } finally {
      await copy.stop();
    }

    // The init container runs again (the pod's sandbox was recreated, e.g. a node reboot), after
    // the database has written data of its own and the plan is gone: it leaves the data as it is.
    writeFileSync(join(target, 'written-by-the-database'), 'new');
    await plans.delete([`uid-restore-1/ns1.vm-0.json`]);
    const before = listing(target);
    const rerun = await run(['restore', ...args, '--data-dir', target, '--json'], bareEnv);
    expect(rerun.status, rerun.stderr).to.equal(0);
    expect(rerun.json()).to.include({ restore: 'restore-1', backup: 'b1', alreadyRestored: true });
    expectNoUrl(rerun, url);
    expect(listing(target)).to.deep.equal(before);

    // Another restore's plan into the now non-empty directory: refused, saying how to replace, and nothing changes.
    const second = await planArgs('restore-2');
    const again = await run(['restore', ...second.args, '--data-dir', target], bareEnv);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/is not empty .*--replace.*restoreReplace: "true"/);
    expectNoUrl(again, second.url);
    expect(listing(target)).to.deep.equal(before);

    // With --replace the old contents are moved aside (nothing deleted) and the restore completes;
    // --no-direct-io writes the same files through the page cache; --max-bytes-per-second paces
    // the downloads (restoreMaxBytesPerSecond).
    const replaced = await run(['restore', ...second.args, '--data-dir', target, '--replace', '--no-direct-io', '--max-bytes-per-second', '64KiB', '--json'], bareEnv);
    expect(replaced.status, replaced.stderr).to.equal(0);
    expectNoUrl(replaced, second.url);
    expect(replaced.json()).to.include({ verified: true, directIo: false });
    expect(replaced.json().durationSeconds).to.be.at.least(replaced.json().bytesTotal / 65_536 - 0.06);
    const movedAside = replaced.json().movedAside as string;
    expect(movedAside).to.be.a('string');
    // Every path with its size and mtime as it was: moved, not copied or rewritten.
    expect(listing(movedAside)).to.deep.equal(before);
    expect(readFileSync(join(movedAside, 'written-by-the-database'), 'utf8'), "the database's own file, moved aside with the rest").to.equal('new');
  });

  it('a tampered plan is refused by its SHA-256 before anything is written', async () => {
    const { url, args } = await planArgs('restore-tampered', {
      tamper: (b) => Buffer.from(b.toString().replace('"restore":"restore-tampered"', '"restore":"restore-tampereX"')),
    });
    const target = join(mkdtempSync(join(tmpdir(), 'plan-restore-')), 'data');
    const res = await run(['restore', ...args, '--data-dir', target], bareEnv);
    expect(res.status).to.equal(1);
    expect(res.stderr).to.match(/restore plan \(\d+ bytes\) does not match its SHA-256: expected [0-9a-f]{64}, got [0-9a-f]{64}: it was changed or truncated/);
    expectNoUrl(res, url);
    expect(existsSync(target)).to.equal(false);
  });

  it('an expired plan says when it expired and to run the restore again', async () => {
    const { url, args, built } = await planArgs('restore-expired', { now: new Date(Date.now() - 2 * 3600_000), expiresInSeconds: 3600 });
    const target = join(mkdtempSync(join(tmpdir(), 'plan-restore-')), 'data');
    const res = await run(['restore', ...args, '--data-dir', target, '--json'], bareEnv);
    expect(res.status).to.equal(1);
    expect(res.stderr).to.include(`restore plan expired at ${built.plan.expiresAt} (restore restore-expired): run the restore again after deleting the workload`);
    // With --json, one object on stdout too, its error as on stderr (the plan was not read: no restore or backup in it).
    expect(res.stdout.split('\n')).to.have.length(2);
    expect(res.json()).to.deep.equal({ dataDir: target, verified: false, error: res.json().error });
    expect(res.stderr).to.include(`velero-plugin-victoria: ${res.json().error}\n`);
    expectNoUrl(res, url);
    expect(existsSync(target)).to.equal(false);

    // Into a directory with data, what to fix there comes first: an init container that crash-looped
    // for hours on it would otherwise end up saying only "expired".
    mkdirSync(target);
    writeFileSync(join(target, 'flock.lock'), '');
    const occupied = await run(['restore', ...args, '--data-dir', target], bareEnv);
    expect(occupied.status).to.equal(1);
    expect(occupied.stderr).to.match(/data directory .* is not empty \(1 entries, e\.g\. flock\.lock\).*restoreReplace: "true"/);
    expect(occupied.stderr).not.to.include('expired');
    expectNoUrl(occupied, url);
  });

  describe('--replace in the init container\'s mounts: the data volume is a mount point, the root file system read-only', () => {
    /**
     * Runs the restore as the init container sees its files: `root` (the container's root file
     * system) read-only, and `volume` (the hostPath) mounted at root/victoria-data, plus `extra`
     * shell commands; in a mount namespace of its own (unshare -m), so the mounts end with it.
     */
    async function restoreInMounts(root: string, volume: string, args: string[], extra = '') {
      const target = join(root, 'victoria-data');
      mkdirSync(target, { recursive: true });
      const mounts = `mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && mount --bind "$2" "$1/victoria-data" ${extra ? `&& ${extra}` : ''} && shift 2 && exec "$@"`;
      return runCommand('unshare', ['-m', 'sh', '-c', mounts, 'sh', root, volume, paths.plugin, 'restore', ...args, '--data-dir', target, '--replace', '--json'], bareEnv);
    }

    it('the old contents go into a hidden folder inside the volume, nothing deleted, and the restore completes', async () => {
      const base = mkdtempSync(join(tmpdir(), 'plan-restore-mounts-'));
      const volume = join(base, 'volume');
      mkdirSync(join(volume, 'data'), { recursive: true });
      writeFileSync(join(volume, 'data', 'precious'), 'keep me');
      writeFileSync(join(volume, 'flock.lock'), '');
      const old = listing(volume);
      const { url, args } = await planArgs('restore-mounts');
      // Renaming the volume itself fails with EROFS here (its parent is read-only), not EBUSY.
      const res = await restoreInMounts(join(base, 'root'), volume, args);
      expect(res.status, res.stderr).to.equal(0);
      expectNoUrl(res, url);
      expect(res.json()).to.include({ verified: true });
      const movedAside = res.json().movedAside as string;
      expect(movedAside).to.match(/^.*\/victoria-data\/\.replaced-[0-9TZ-]+$/);
      const aside = join(volume, movedAside.split('/').at(-1)!);
      expect(listing(aside).map((l) => l.split(' ')[0])).to.deep.equal(old.map((l) => l.split(' ')[0]));
      expect(readFileSync(join(aside, 'data', 'precious'), 'utf8')).to.equal('keep me');
      expect(existsSync(join(volume, 'data', 'small')), 'restored beside it').to.equal(true);
      expect(readdirSync(join(base, 'root')), 'nothing beside the volume').to.deep.equal(['victoria-data']);
    });

    it('a volume mounted inside the data directory is refused before anything moves, naming it', async () => {
      const base = mkdtempSync(join(tmpdir(), 'plan-restore-mounts-'));
      const volume = join(base, 'volume');
      mkdirSync(join(volume, 'data'), { recursive: true });
      mkdirSync(join(volume, 'nested'));
      writeFileSync(join(volume, 'data', 'precious'), 'keep me');
      writeFileSync(join(volume, 'flock.lock'), '');
      const old = listing(volume);
      const { url, args } = await planArgs('restore-nested');
      const res = await restoreInMounts(join(base, 'root'), volume, args, 'mount -t tmpfs tmpfs "$1/victoria-data/nested"');
      expect(res.status).to.equal(1);
      expectNoUrl(res, url);
      expect(res.stderr).to.include('cannot move the contents of data directory');
      expect(res.stderr).to.include('nested in it is a mount point of its own (another volume mounted inside the data directory), which cannot be moved. Nothing was deleted');
      expect(listing(volume)).to.deep.equal(old);
    });
  });
});
