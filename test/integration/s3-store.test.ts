/**
 * The S3 store against moto in auth mode (SigV4 enforced): every operation, paging, multipart
 * upload with bounded memory (measured in a child process), both copy paths, SSE / storage class /
 * checksum algorithms, credentials files and profiles, batch delete, clear auth errors, TLS with a
 * CA bundle, aborted uploads, resumed downloads, timeouts, and everything again through a proxy
 * that breaks a fifth of the requests (every S3 operation used gets at least one fault).
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  ListPartsCommand,
  PutObjectLockConfigurationCommand,
} from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { compareKeys } from '../../src/store/keys.js';
import { S3Store } from '../../src/store/s3.js';
import type { S3StoreOptions } from '../../src/store/s3-client.js';
import type { RetryEvent } from '../../src/store/s3-retry.js';
import { bslS3Options } from '../../src/actions/bsl-s3-options.js';
import { openStore } from '../../src/store/url.js';
import { paths, requireComponents, ROOT } from '../support/components.js';
import { makeTestTls } from '../support/tls.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startMoto, type Moto } from '../support/moto.js';
import { readAll, collect, rejection } from '../support/store-helpers.js';

const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (AES-CTR keystream), `size` bytes in `chunk`-sized pieces. */
function randomStream(size: number, seed: number, chunk = 256 * 1024): { stream: Readable; sha256: () => string } {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  const hash = createHash('sha256');
  let left = size;
  let digest: string | undefined;
  const zeros = Buffer.alloc(chunk);
  const stream = new Readable({
    read() {
      if (left === 0) {
        digest = hash.digest('hex');
        this.push(null);
        return;
      }
      const n = Math.min(chunk, left);
      const data = cipher.update(zeros.subarray(0, n));
      hash.update(data);
      left -= n;
      this.push(data);
    },
  });
  return {
    stream,
    sha256: () => {
      if (digest === undefined) throw new Error('stream not fully read');
      return digest;
    },
  };
}

function randomBuffer(size: number, seed: number): Buffer {
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0)).update(Buffer.alloc(size));
}

async function sha256Of(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}




describe('S3 store against moto (auth mode)', function () {
  this.timeout(60_000);
  let moto: Moto;
  let seq = 0;
  const stores: S3Store[] = [];

  function store(extra: Partial<S3StoreOptions> = {}): S3Store {
    const s = new S3Store({
      bucket: moto.bucket,
      prefix: `it/${++seq}`,
      ...moto.s3Options,
      responseChecksumValidation: 'WHEN_REQUIRED', // moto needs it to read copies of multipart objects
      partSize: 5 * MiB,
      ...extra,
    });
    stores.push(s);
    return s;
  }

  before(async function () {
    requireComponents(this, paths.python3, paths.motoServer);
    moto = await startMoto();
    console.log(`      moto ready (IAM user, key, bucket) in ${moto.startMs} ms`);
  });

  after(async () => {
    for (const s of stores) s.destroy();
    await moto?.stop();
  });

  it('puts, gets, heads and reads ranges; missing objects are clear', async () => {
    const s = store();
    const data = randomBuffer(100_000, 1);
    await s.put('a/b/small.bin', data, data.length);
    expect((await readAll(await s.get('a/b/small.bin'))).equals(data)).to.equal(true);
    const info = await s.head('a/b/small.bin');
    expect(info?.size).to.equal(data.length);
    expect(info?.lastModified).to.be.instanceOf(Date);

    expect((await readAll(await s.get('a/b/small.bin', { start: 10, end: 19 }))).equals(data.subarray(10, 20))).to.equal(true);
    // An end beyond the object is clipped, as in HTTP.
    expect((await readAll(await s.get('a/b/small.bin', { start: 99_990, end: 200_000 }))).equals(data.subarray(99_990))).to.equal(true);
    const beyond = await rejection(s.get('a/b/small.bin', { start: 100_000, end: 100_010 }));
    expect(beyond.code).to.equal('InvalidRange');

    // Streams and empty objects.
    await s.put('stream.bin', Readable.from([data.subarray(0, 1000), data.subarray(1000, 5000)]), 5000);
    expect((await readAll(await s.get('stream.bin'))).equals(data.subarray(0, 5000))).to.equal(true);
    await s.put('empty', Buffer.alloc(0), 0);
    expect((await s.head('empty'))?.size).to.equal(0);
    expect((await readAll(await s.get('empty'))).length).to.equal(0);
    await s.put('empty-stream', Readable.from([]), 0);
    expect((await s.head('empty-stream'))?.size).to.equal(0);

    expect(await s.head('nope')).to.equal(undefined);
    const missing = await rejection(s.get('nope'));
    expect(missing.code).to.equal('NotFound');
    expect(missing.message).to.contain(`s3://${moto.bucket}/it/`).and.to.contain('/nope');

    // Keys that would escape the prefix are refused before any request.
    for (const bad of ['../x', '/abs', 'a//b', 'a\\b', 'a/./b', '']) {
      expect((await rejection(s.put(bad, Buffer.alloc(1), 1))).code).to.equal('InvalidKey');
    }
  });

  it('refuses bodies that are shorter or longer than announced, and leaves nothing behind', async () => {
    const s = store();
    const short = await rejection(s.put('short', Readable.from([Buffer.alloc(10)]), 11));
    expect(short.code).to.equal('SizeMismatch');
    const long = await rejection(s.put('long', Readable.from([Buffer.alloc(12)]), 11));
    expect(long.code).to.equal('SizeMismatch');
    // Multipart: the stream ends one part early.
    const big = await rejection(s.put('big-short', randomStream(11 * MiB, 3).stream, 12 * MiB));
    expect(big.code).to.equal('SizeMismatch');
    expect(await s.head('short')).to.equal(undefined);
    expect(await s.head('big-short')).to.equal(undefined);
    const uploads = await moto.client.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: `it/${seq}/` }));
    expect(uploads.Uploads ?? []).to.deep.equal([]);
  });

  it('abortOpenUploads (an interrupted CLI backup) aborts the multipart uploads under way; their puts fail and nothing is left', async () => {
    const s = store({ partSize: 5 * MiB });
    // A body that gives one part and a bit, then waits: the upload stays open until aborted.
    let release!: () => void;
    const waiting = new Promise<void>((r) => (release = r));
    async function* stalled(): AsyncGenerator<Buffer> {
      yield randomBuffer(6 * MiB, 21);
      await waiting;
    }
    const put = s.put('stalled/a', stalled(), 12 * MiB);
    const putFailed = rejection(put);
    const listUploads = async () => (await moto.client.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: `it/${seq}/stalled/` }))).Uploads ?? [];
    const deadline = Date.now() + 30_000;
    // Until its first part is in: a part still in flight when the upload is aborted gets a 500
    // from moto (S3 answers 404 NoSuchUpload), retried with backoff for up to a minute.
    const partsIn = async () => {
      const upload = (await listUploads())[0];
      if (!upload) return 0;
      return ((await moto.client.send(new ListPartsCommand({ Bucket: moto.bucket, Key: upload.Key, UploadId: upload.UploadId }))).Parts ?? []).length;
    };
    while ((await partsIn()) === 0) {
      if (Date.now() > deadline) throw new Error('the multipart upload did not send its first part within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await s.abortOpenUploads()).to.equal(1);
    expect(await listUploads(), 'no upload left in the bucket').to.deep.equal([]);
    release();
    await putFailed;
    expect(await s.head('stalled/a')).to.equal(undefined);
    expect(await s.abortOpenUploads(), 'nothing open any more').to.equal(0);
  });

  it('lists in key order across pages, and lists "directories"', async () => {
    const s = store({ listPageSize: 7 });
    const keys = ['a-b', 'a/b', 'a/c/d', 'a0', 'b+c=d', 'b/ü', 'b/z', 'c/1', 'c/2/x', 'c/3', 'é', 'z', '日本'];
    for (let i = 0; i < 12; i++) keys.push(`many/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((k, i) => s.put(k, Buffer.alloc(i), i)));
    const listed = await collect(s.list(''));
    expect(listed.map((o) => o.key)).to.deep.equal([...keys].sort(compareKeys));
    expect(listed.find((o) => o.key === 'c/3')?.size).to.equal(keys.indexOf('c/3'));
    expect((await collect(s.list('c/'))).map((o) => o.key)).to.deep.equal(['c/1', 'c/2/x', 'c/3']);
    expect((await collect(s.list('a'))).map((o) => o.key)).to.deep.equal(['a-b', 'a/b', 'a/c/d', 'a0']);
    expect(await collect(s.list('nothing/'))).to.deep.equal([]);
    expect(await s.listDirectories('')).to.deep.equal(['a/', 'b/', 'c/', 'many/']);
    expect(await s.listDirectories('c/')).to.deep.equal(['c/2/']);
  });

  it('streams a 64 MiB multipart upload in parallel parts with bounded memory', async () => {
    // Part buffers: one of the upload's own + 10 MiB pooled = 15 MiB, whatever the object's size.
    // Measured in a child process of its own, collecting garbage before every sample.
    const size = 64 * MiB;
    const prefix = `it/${++seq}`;
    const options: S3StoreOptions = {
      bucket: moto.bucket,
      prefix,
      ...moto.s3Options,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      partSize: 5 * MiB,
      queueSize: 3,
      uploadBufferBytes: 10 * MiB,
    };
    const probe = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(ROOT, 'test', 'support', 's3-upload-probe.ts'), JSON.stringify({ store: options, key: 'big/file.bin', size, seed: 7 })], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    probe.stdout.on('data', (d: Buffer) => (out += d.toString()));
    probe.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(probe, 'close')) as [number | null];
    expect(code, err).to.equal(0);
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { sha256: string; seconds: number; baseRssMiB: number; rssGrowthMiB: number; buffersGrowthMiB: number };
    console.log(`      64 MiB upload: ${(64 / r.seconds).toFixed(1)} MiB/s; RSS ${r.baseRssMiB.toFixed(0)} MiB + ${r.rssGrowthMiB.toFixed(1)} MiB, buffers + ${r.buffersGrowthMiB.toFixed(1)} MiB`);
    // 15 MiB of part buffers held steadily; samples sometimes catch transients on top, up to the
    // three parts in flight (queueSize × partSize): 15.8 or 21.3 MiB usually, 32.3 MiB once in 15
    // CI runs. What matters is the bound, well under the 64 MiB a whole-object buffer would take.
    expect(r.buffersGrowthMiB).to.be.below(40);
    expect(r.rssGrowthMiB).to.be.below(40); // the object is 64 MiB
    const head = await moto.client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: `${prefix}/big/file.bin` }));
    expect(head.ETag).to.match(/-13"$/); // 12 × 5 MiB + 4 MiB
    const s = store({ prefix });
    expect(await sha256Of(await s.get('big/file.bin'))).to.deep.equal({ sha256: r.sha256, size });
  });

  it('copies server-side, by CopyObject and by UploadPartCopy above the threshold', async () => {
    const s = store({ multipartCopyThreshold: 6 * MiB, copyPartSize: 5 * MiB });
    const small = randomBuffer(1 * MiB + 3, 11);
    const big = randomBuffer(12 * MiB + 5, 12);
    await s.put('src/small', small, small.length);
    await s.put('src/big+=ü', big, big.length);
    await s.copy('src/small', 'dst/small', small.length);
    await s.copy('src/big+=ü', 'dst/big+=ü', big.length);
    await s.put('src/empty', Buffer.alloc(0), 0);
    await s.copy('src/empty', 'dst/empty', 0);
    expect((await readAll(await s.get('dst/small'))).equals(small)).to.equal(true);
    expect((await readAll(await s.get('dst/big+=ü'))).equals(big)).to.equal(true);
    expect((await s.head('dst/empty'))?.size).to.equal(0);
    // The big one really went through UploadPartCopy: 3 parts.
    const head = await moto.client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: `it/${seq}/dst/big+=ü` }));
    expect(head.ETag).to.match(/-3"$/);
    // A size that does not match is caught before copying (multipart path checks with HEAD).
    expect((await rejection(s.copy('src/big+=ü', 'dst/wrong', big.length + 1))).code).to.equal('SizeMismatch');
    expect((await rejection(s.copy('src/none', 'dst/none', 10))).code).to.equal('NotFound');
    // Pinned to the ETag the listing gave: that one copies; another (the object was replaced) is refused before any part.
    const listed = new Map<string, string | undefined>();
    for await (const o of s.list('src/')) listed.set(o.key, o.etag);
    expect(listed.get('src/big+=ü')).to.match(/^[0-9a-f]{32}(-[0-9]+)?$/);
    await s.copy('src/big+=ü', 'dst/pinned', big.length, listed.get('src/big+=ü'));
    await s.copy('src/small', 'dst/pinned-small', small.length, listed.get('src/small'));
    expect((await rejection(s.copy('src/big+=ü', 'dst/stale', big.length, listed.get('src/small')))).code).to.equal('Changed');
    expect(await s.head('dst/stale')).to.equal(undefined);
    const uploads = await moto.client.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: `it/${seq}/` }));
    expect(uploads.Uploads ?? []).to.deep.equal([]);
  });

  it('writes with SSE, storage class and a chosen checksum, on puts, multipart uploads and copies', async () => {
    for (const [sse, algorithm] of [['AES256', 'SHA256'], ['aws:kms', 'CRC32C'], ['aws:kms:dsse', 'CRC32']] as const) {
      const s = store({
        serverSideEncryption: sse,
        ...(sse !== 'AES256' ? { kmsKeyId: 'alias/backups' } : {}),
        storageClass: 'STANDARD_IA',
        checksumAlgorithm: algorithm,
        requestChecksumCalculation: 'WHEN_SUPPORTED',
        multipartCopyThreshold: 6 * MiB,
      });
      const small = randomBuffer(1000, 41);
      const big = randomStream(11 * MiB, 42);
      await s.put('small', small, small.length);
      await s.put('big', big.stream, 11 * MiB);
      await s.copy('small', 'small-copy', small.length);
      await s.copy('big', 'big-copy', 11 * MiB);
      for (const key of ['small', 'big', 'small-copy', 'big-copy']) {
        const head = await moto.client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: `it/${seq}/${key}` }));
        expect(head.ServerSideEncryption, `${sse} ${key}`).to.equal(sse);
        // moto echoes the key id for aws:kms only.
        if (sse === 'aws:kms') expect(head.SSEKMSKeyId, key).to.contain('alias/backups');
        expect(head.StorageClass, key).to.equal('STANDARD_IA');
      }
      expect(await sha256Of(await s.get('big-copy'))).to.deep.equal({ sha256: big.sha256(), size: 11 * MiB });
    }
  });

  it('tags every object it writes: puts, multipart uploads and both kinds of copies, replacing the source\'s tags', async () => {
    const tagsOf = async (key: string) => {
      const out = await moto.client.send(new GetObjectTaggingCommand({ Bucket: moto.bucket, Key: `it/${seq}/${key}` }));
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key, t.Value]));
    };
    const untagged = store({ multipartCopyThreshold: 6 * MiB });
    const prefix = `it/${seq}`;
    const small = randomBuffer(1000, 51);
    const big = randomStream(11 * MiB, 52);
    await untagged.put('small', small, small.length);
    await untagged.put('big', big.stream, 11 * MiB);
    expect(await tagsOf('small')).to.deep.equal({});

    // The same keys through a tagged store on the same prefix: "+" is a space, %XX an escape, as S3 reads query parameters.
    const tagged = new S3Store({ bucket: moto.bucket, prefix, ...moto.s3Options, responseChecksumValidation: 'WHEN_REQUIRED', partSize: 5 * MiB, multipartCopyThreshold: 6 * MiB, tagging: 'team=observability&tier=daily+4h&path=a%2Fb' });
    stores.push(tagged);
    const want = { team: 'observability', tier: 'daily 4h', path: 'a/b' };
    await tagged.put('small-tagged', small, small.length);
    await tagged.put('big-tagged', randomStream(11 * MiB, 53).stream, 11 * MiB);
    await tagged.copy('small', 'small-copy', small.length); // CopyObject
    await tagged.copy('big', 'big-copy', 11 * MiB); // UploadPartCopy
    for (const key of ['small-tagged', 'big-tagged', 'small-copy', 'big-copy']) expect(await tagsOf(key), key).to.deep.equal(want);
    // Without tagging, a copy keeps the source's tags.
    await untagged.copy('small-tagged', 'small-tagged-copy', small.length);
    expect(await tagsOf('small-tagged-copy')).to.deep.equal(want);

    // A tag set S3 would refuse fails when the store opens, naming the tag.
    for (const [tagging, why] of [
      ['team', /"team" has no "="/],
      ['a=1&a=2', /tag key a appears twice/],
      ['k#=v', /tag k# has a character S3 does not allow/],
      [Array.from({ length: 11 }, (_, i) => `k${i}=v`).join('&'), /11 tags, S3 allows at most 10/],
      [`${'k'.repeat(129)}=v`, /must have 1 to 128 characters/],
      ['k=%zz', /invalid %-escape/],
    ] as const) {
      expect(() => store({ tagging })).to.throw(/tagging .*/).with.property('message').that.matches(why);
    }
  });

  it('writes into a bucket with S3 Object Lock: checksummed uploads work, deletes leave the locked versions, and without checksums the error names Object Lock', async () => {
    const Bucket = 'locked-backups';
    await moto.client.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
    await moto.client.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }));
    // The default (CRC32 on every upload) satisfies Object Lock's demand for a checksum.
    const s = store({ bucket: Bucket });
    const small = randomBuffer(1000, 61);
    const big = randomStream(11 * MiB, 62);
    await s.put('small', small, small.length);
    await s.put('big', big.stream, 11 * MiB);
    expect((await readAll(await s.get('small'))).equals(small)).to.equal(true);
    expect(await sha256Of(await s.get('big'))).to.deep.equal({ sha256: big.sha256(), size: 11 * MiB });
    // Deleting a backup (versioned, as Object Lock requires) leaves delete markers; the versions stay locked until their retention ends.
    await s.delete(['small', 'big']);
    expect(await collect(s.list(''))).to.deep.equal([]);
    const versions = await moto.client.send(new ListObjectVersionsCommand({ Bucket, Prefix: `it/${seq}/` }));
    expect((versions.Versions ?? []).map((v) => v.Key).sort()).to.deep.equal([`it/${seq}/big`, `it/${seq}/small`]);
    expect((versions.DeleteMarkers ?? []).map((v) => v.Key).sort()).to.deep.equal([`it/${seq}/big`, `it/${seq}/small`]);
    // (moto applies the default retention to single puts, not to completed multipart uploads.)
    const locked = versions.Versions!.find((v) => v.Key === `it/${seq}/small`)!;
    const refused = await moto.client.send(new DeleteObjectCommand({ Bucket, Key: locked.Key!, VersionId: locked.VersionId! })).then(() => 'deleted', (e: Error) => e.name);
    expect(refused, 'a locked version cannot be deleted').to.equal('AccessDenied');

    // Without checksums (checksumAlgorithm "" in a location), the upload is refused, and the error says why and what to change.
    const unchecked = store({ bucket: Bucket, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const err = await rejection(unchecked.put('small', small, small.length));
    expect(err.code).to.equal('Config');
    expect(err.message).to.match(/bucket locked-backups has S3 Object Lock with a default retention, which takes an upload only with a checksum \(MissingUploadObjectWithObjectLockHeaders\): remove checksumAlgorithm "" from the location/);
    expect(await collect(unchecked.list(''))).to.deep.equal([]);
  });

  it('takes credentials from a shared credentials file and profile, as Velero passes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'creds-'));
    try {
      const file = join(dir, 'cloud');
      writeFileSync(file, `[default]\naws_access_key_id = AKIADEFAULTDEFAULT00\naws_secret_access_key = nope\n\n[backup]\naws_access_key_id = ${moto.accessKeyId}\naws_secret_access_key = ${moto.secretAccessKey}\n`);
      const { options } = bslS3Options({ s3Url: moto.endpoint, s3ForcePathStyle: 'true', region: moto.region, credentialsFile: file, profile: 'backup', checksumAlgorithm: '' });
      const good = openStore(`s3://${moto.bucket}/it/creds`, { s3: options }) as S3Store;
      stores.push(good);
      await good.put('k', Buffer.from('v'), 1);
      expect((await readAll(await good.get('k'))).toString()).to.equal('v');
      const wrong = openStore(`s3://${moto.bucket}/it/creds`, { s3: { ...options, profile: 'default', maxAttempts: 1 } }) as S3Store;
      stores.push(wrong);
      const e1 = await rejection(wrong.head('k'));
      expect(e1.message).to.contain(`access key id AKIADEFAULTDEFAULT00 (from ${file}, profile default) is not known to`);
      const missing = openStore(`s3://${moto.bucket}/it/creds`, { s3: { ...options, profile: 'absent', maxAttempts: 1 } }) as S3Store;
      stores.push(missing);
      const e2 = await rejection(missing.head('k'));
      expect(e2.code).to.equal('Credentials');
      expect(e2.message).to.contain(`no usable S3 credentials: ${file} has no profile [absent] (it has [default], [backup])`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('deletes in batches; missing keys are fine', async () => {
    const s = store({ deleteBatchSize: 10 });
    const keys = Array.from({ length: 35 }, (_, i) => `d/${i}`);
    await Promise.all(keys.map((k) => s.put(k, Buffer.from(k), Buffer.byteLength(k))));
    await s.put('keep', Buffer.from('x'), 1);
    await s.delete([...keys, 'd/missing', 'other/missing', keys[0]!]);
    expect((await collect(s.list(''))).map((o) => o.key)).to.deep.equal(['keep']);
    await s.delete([]);
  });

  it('says which credential is wrong, and never prints the secret', async () => {
    const wrongSecret = 'Wr0ngSecretWr0ngSecretWr0ngSecretWr0ngSec';
    const s = store({ credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: wrongSecret }, maxAttempts: 2 });
    const put = await rejection(s.put('x', Buffer.from('x'), 1));
    expect(put.code).to.equal('Credentials');
    expect(put.message).to.contain(`the secret access key for access key id ${moto.accessKeyId} is wrong (SignatureDoesNotMatch)`);
    expect(put.message).to.match(/^put s3:\/\/velero-victoria-test\/it\/\d+\/x: /);
    // HEAD answers carry no error code: the store asks with a GET to say the same.
    const head = await rejection(s.head('x'));
    expect(head.message).to.contain('is wrong (SignatureDoesNotMatch)');
    const list = await rejection(collect(s.list('')));
    expect(list.message).to.contain('is wrong (SignatureDoesNotMatch)');
    for (const e of [put, head, list]) {
      expect(e.message).not.to.contain(wrongSecret);
      expect(e.message).not.to.contain(moto.secretAccessKey);
    }
    const unknown = store({ credentials: { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: wrongSecret }, maxAttempts: 2 });
    const e2 = await rejection(unknown.put('x', Buffer.from('x'), 1));
    expect(e2.code).to.equal('Credentials');
    expect(e2.message).to.contain('access key id AKIAUNKNOWNUNKNOWN00 is not known to');
  });

  it('names a missing bucket instead of reporting a missing object', async () => {
    const s = new S3Store({
      bucket: 'no-such-bucket',
      prefix: 'p',
      ...moto.s3Options,
    });
    stores.push(s);
    const e = await rejection(s.head('x'));
    expect(e.code).to.equal('NotFound');
    expect(e.message).to.contain('bucket no-such-bucket does not exist');
  });

  it('folderAbove finds a marker in the nearest folder above the root, and nothing in the root itself', async () => {
    const outer = store();
    await outer.put('b1/victoria_complete.ignore', Buffer.from('{}'), 2);
    await outer.put('b1/data/victoria_complete.ignore', Buffer.from('{}'), 2);
    const deep = store({ prefix: `${outer.prefix}/b1/data/small/x` });
    expect(await deep.folderAbove('victoria_complete.ignore')).to.equal(`s3://${moto.bucket}/${outer.prefix}/b1/data`);
    expect(await deep.folderAbove('backup_complete.ignore')).to.equal(undefined);
    expect(await store({ prefix: `${outer.prefix}/b1` }).folderAbove('victoria_complete.ignore')).to.equal(undefined);
  });

  it('openStore opens s3:// locations with the given options', async () => {
    const s = openStore(`s3://${moto.bucket}/it/opened`, {
      s3: moto.s3Options,
    }) as S3Store;
    stores.push(s);
    expect(s.location).to.equal(`s3://${moto.bucket}/it/opened`);
    await s.put('k', Buffer.from('v'), 1);
    const raw = await moto.client.send(new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: 'it/opened/' }));
    expect(raw.Contents?.map((c) => c.Key)).to.deep.equal(['it/opened/k']);
  });

  describe('through a fault proxy', () => {
    let proxy: FaultProxy;
    afterEach(async () => {
      await proxy?.close();
    });

    it('talks TLS with a CA bundle, names an unknown CA, and can skip verification', async () => {
      const tls = makeTestTls();
      proxy = await startFaultProxy({ target: moto.endpoint, tls: { key: tls.keyPem, cert: tls.certPem } });
      expect(proxy.endpoint).to.match(/^https:/);
      const trusted = store({ endpoint: proxy.endpoint, caCert: tls.caPem });
      await trusted.put('tls/x', Buffer.from('over tls'), 8);
      expect((await readAll(await trusted.get('tls/x'))).toString()).to.equal('over tls');
      const prefix = `it/${seq}`;
      const fromFile = openStore(`s3://${moto.bucket}/${prefix}`, { s3: { ...moto.s3Options, endpoint: proxy.endpoint, caCertFile: tls.caFile } }) as S3Store;
      stores.push(fromFile);
      expect((await fromFile.head('tls/x'))?.size).to.equal(8);
      const strict = store({ endpoint: proxy.endpoint, prefix });
      const e = await rejection(strict.head('tls/x'));
      expect(e.code).to.equal('Config');
      expect(e.message).to.match(/TLS verification of https:\/\/127\.0\.0\.1:\d+ failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\): give the CA bundle/);
      const insecure = store({ endpoint: proxy.endpoint, prefix, insecureSkipTLSVerify: true });
      expect((await insecure.head('tls/x'))?.size).to.equal(8);
    });

    it('aborts a multipart upload whose part keeps failing, and keeps the old object', async () => {
      proxy = await startFaultProxy({ target: moto.endpoint, seed: 5, rate: 1, weights: { error500: 1, slowDown503: 0, resetRequest: 1, resetResponse: 0, slow: 0 }, filter: (r) => r.operation === 'UploadPart' && /[?&]partNumber=3(&|$)/.test(r.url) });
      const s = store({ endpoint: proxy.endpoint, maxAttempts: 3 });
      const old = Buffer.from('old version');
      await s.put('victim', old, old.length);
      const e = await rejection(s.put('victim', randomStream(16 * MiB, 9).stream, 16 * MiB));
      expect(e.message).to.match(/^put s3:\/\/.*\/victim: failed after 3 attempts: /);
      expect(proxy.totalFaults()).to.equal(3);
      const uploads = await moto.client.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: `it/${seq}/` }));
      expect(uploads.Uploads ?? []).to.deep.equal([]);
      expect((await readAll(await s.get('victim'))).toString()).to.equal('old version');
    });

    it('resumes a download that breaks off mid-stream, from where it stopped', async () => {
      let cut = 0;
      proxy = await startFaultProxy({
        target: moto.endpoint,
        rate: 1,
        weights: { error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 1, slow: 0 },
        // The first two GETs of the object: the whole one, then the resumed range, are cut in half.
        filter: (r) => r.operation === 'GetObject' && r.url.includes('/resume/obj') && cut++ < 2,
      });
      const retries: RetryEvent[] = [];
      const s = store({ endpoint: proxy.endpoint, onRetry: (e) => retries.push(e) });
      const data = randomBuffer(3 * MiB + 17, 33);
      await s.put('resume/obj', data, data.length);
      expect((await readAll(await s.get('resume/obj'))).equals(data)).to.equal(true);
      expect(proxy.counts.faults.resetResponse).to.equal(2);
      expect(retries.map((r) => r.reason)).to.deep.equal(['resume GET: ECONNRESET', 'resume GET: ECONNRESET']);
      // A range is resumed within the range.
      cut = 0;
      const part = await readAll(await s.get('resume/obj', { start: 1000, end: 2 * MiB }));
      expect(part.equals(data.subarray(1000, 2 * MiB + 1))).to.equal(true);
    });

    it('readInto reads the SDK-signed GET into reused buffers, and continues with the SDK where it breaks off', async () => {
      const seen: string[] = [];
      let cut = 0;
      proxy = await startFaultProxy({
        target: moto.endpoint,
        rate: 1,
        weights: { error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 1, slow: 0 },
        filter: (r) => {
          if (r.operation === 'GetObject' && r.url.includes('/direct/')) seen.push(r.url.replace(/^.*\/direct\//, ''));
          return r.operation === 'GetObject' && r.url.includes('/direct/cut') && cut++ < 1;
        },
      });
      const retries: RetryEvent[] = [];
      const s = store({ endpoint: proxy.endpoint, onRetry: (e) => retries.push(e) });
      const data = randomBuffer(3 * MiB + 17, 34);
      await s.put('direct/whole', data, data.length);
      await s.put('direct/cut', data, data.length);
      const into = async (key: string): Promise<Buffer> => {
        const parts: Buffer[] = [];
        await s.readInto(key, data.length, (chunk) => void parts.push(Buffer.from(chunk)));
        return Buffer.concat(parts);
      };
      expect((await into('direct/whole')).equals(data)).to.equal(true);
      expect(seen).to.deep.equal(['whole?x-id=GetObject']);
      // Cut after some bytes: the SDK's GetObject fetches the rest (a range, pinned to the ETag); the
      // direct read's own resumption message tells the two apart.
      expect((await into('direct/cut')).equals(data)).to.equal(true);
      expect(seen).to.deep.equal(['whole?x-id=GetObject', 'cut?x-id=GetObject', 'cut?x-id=GetObject']);
      expect(retries.map((r) => r.reason)).to.deep.equal(['resume GET: closed by the server']);
      // A missing object is named as get() names it.
      const err = await rejection(s.readInto('direct/missing', 10, () => undefined));
      expect(err.message).to.match(/direct\/missing/).and.match(/does not exist|NoSuchKey|not found/i);

    });

    it('times out a request that hangs, and retries it', async () => {
      let hung = 0;
      proxy = await startFaultProxy({
        target: moto.endpoint,
        rate: 1,
        slowMs: 3000,
        weights: { error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 0, slow: 1 },
        filter: (r) => r.operation === 'HeadObject' && hung++ < 2,
      });
      const retries: RetryEvent[] = [];
      const s = store({ endpoint: proxy.endpoint, socketTimeoutMs: 300, onRetry: (e) => retries.push(e) });
      await s.put('hang', Buffer.from('x'), 1);
      const t0 = Date.now();
      expect((await s.head('hang'))?.size).to.equal(1);
      expect(Date.now() - t0).to.be.below(2500);
      expect(retries.map((r) => r.reason)).to.deep.equal(['TimeoutError', 'TimeoutError']);
    });

    it('survives 20% faults (500, SlowDown, resets, slow answers): upload, copies, list, get are byte-identical', async () => {
      const operations = ['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'PutObject', 'CopyObject', 'UploadPartCopy', 'ListObjectsV2', 'GetObject', 'DeleteObjects'];
      proxy = await startFaultProxy({ target: moto.endpoint, seed: 20260121, rate: 0.2, slowMs: 250, weights: { resetResponse: 2 }, guarantee: operations });
      const retries: RetryEvent[] = [];
      const s = store({
        endpoint: proxy.endpoint,
        maxAttempts: 12,
        listPageSize: 5,
        multipartCopyThreshold: 6 * MiB,
        copyPartSize: 5 * MiB,
        queueSize: 3,
        uploadBufferBytes: 10 * MiB,
        onRetry: (e) => retries.push(e),
      });
      const size = 24 * MiB + 12345;
      const src = randomStream(size, 21);
      await s.put('data/big', src.stream, size);
      const smalls = Array.from({ length: 16 }, (_, i) => randomBuffer(1000 + i, 100 + i));
      await Promise.all(smalls.map((b, i) => s.put(`data/small/${String(i).padStart(2, '0')}`, b, b.length)));
      await s.copy('data/big', 'copy/big', size);
      await s.copy('data/small/00', 'copy/small', smalls[0]!.length);

      const listed = await collect(s.list('data/'));
      expect(listed.map((o) => o.key)).to.deep.equal(['data/big', ...smalls.map((_, i) => `data/small/${String(i).padStart(2, '0')}`)]);
      expect(await s.listDirectories('')).to.deep.equal(['copy/', 'data/']);

      for (const key of ['data/big', 'copy/big']) {
        expect(await sha256Of(await s.get(key))).to.deep.equal({ sha256: src.sha256(), size });
      }
      // Ranged reads, as restore does for large files.
      const whole = await readAll(await s.get('data/big'));
      const step = 3 * MiB;
      const pieces = await Promise.all(
        Array.from({ length: Math.ceil(size / step) }, (_, i) => s.get('copy/big', { start: i * step, end: Math.min(size, (i + 1) * step) - 1 }).then(readAll)),
      );
      expect(Buffer.concat(pieces).equals(whole)).to.equal(true);
      for (let i = 0; i < smalls.length; i++) {
        expect((await readAll(await s.get(`data/small/${String(i).padStart(2, '0')}`))).equals(smalls[i]!)).to.equal(true);
      }
      expect((await readAll(await s.get('copy/small'))).equals(smalls[0]!)).to.equal(true);
      await s.delete(listed.map((o) => o.key));
      expect((await collect(s.list('data/'))).length).to.equal(0);

      const c = proxy.counts;
      console.log(`      ${c.requests} requests, faults ${JSON.stringify(c.faults)}; hit: ${JSON.stringify(c.byOperation)}; ${retries.length} retries`);
      expect(Object.keys(c.byOperation)).to.include.members(operations);
      expect(proxy.totalFaults()).to.be.above(15);
      expect(Object.values(c.faults).filter((n) => n > 0).length, 'fault kinds seen').to.be.at.least(4);
      expect(retries.length, "every fault but a slow answer costs a retry").to.be.at.least(proxy.totalFaults() - c.faults.slow);
      const uploads = await moto.client.send(new ListMultipartUploadsCommand({ Bucket: moto.bucket, Prefix: `it/${seq}/` }));
      expect(uploads.Uploads ?? []).to.deep.equal([]);
    });
  });

  it('moto really enforces auth: an unsigned request is refused', async () => {
    // Guard against a moto that silently accepts everything: a plain unsigned PUT must fail.
    const res = await fetch(`${moto.endpoint}/${moto.bucket}/anonymous`, { method: 'PUT', body: 'x' });
    expect(res.status).to.be.oneOf([403, 500]); // 500 is moto's KeyError on missing auth
    await res.arrayBuffer();
  });
});
