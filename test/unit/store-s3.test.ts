/**
 * The S3 store without an S3 server: error messages (from errors shaped like the SDK's), the retry
 * strategy's decisions, the part buffer pool, argument checks, and what the real client makes of a
 * web server's pages. The real protocol is tested against moto in test/integration/s3-store.test.ts.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PartBufferPool } from '../../src/store/part-buffers.js';
import { PersistentRetryStrategy, type RetryEvent } from '../../src/store/s3-retry.js';
import { S3Store } from '../../src/store/s3.js';
import { StoreError } from '../../src/store/errors.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';
import { collect, readAll, rejection } from '../support/store-helpers.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} message from the server`), { name, $fault: 'client', $metadata: status === undefined ? {} : { httpStatusCode: status, attempts: 1 }, ...extra });
}

/** A store whose client answers every request with `fail(command)`. */
function stubStore(fail: (command: { constructor: { name: string }; input: unknown }) => unknown, options: Record<string, unknown> = {}): { store: S3Store; sent: string[] } {
  const sent: string[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: unknown }) => {
      sent.push(command.constructor.name);
      const r = fail(command);
      if (r instanceof Error) throw r;
      return r;
    },
    config: {
      credentials: async () => ({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET }),
      region: async () => 'us-east-1',
    },
    destroy: () => undefined,
  } as unknown as S3Client;
  return { store: new S3Store({ bucket: 'bkt', prefix: 'pre/fix', endpoint: 'http://127.0.0.1:9', ...options }, client), sent };
}


describe('S3 store errors', () => {
  it('a wrong secret names the access key id, never the secret', async () => {
    const { store } = stubStore(() => sdkError('SignatureDoesNotMatch', 403));
    const err = await rejection(store.put('k', Buffer.from('x'), 1));
    expect(err.code).to.equal('Credentials');
    expect(err.message).to.equal('put s3://bkt/pre/fix/k: the secret access key for access key id AKIAIOSFODNN7EXAMPLE is wrong (SignatureDoesNotMatch)');
    expect(err.backendCode).to.equal('SignatureDoesNotMatch');
    expect(err.status).to.equal(403);
    expect(JSON.stringify({ message: err.message, stack: err.stack })).not.to.contain(SECRET);
  });

  it('names unknown keys, expired tokens, access denied (with the IAM action), missing buckets and regions', async () => {
    const cases: Array<[Error, string, RegExp]> = [
      [sdkError('InvalidAccessKeyId', 403), 'Credentials', /access key id AKIAIOSFODNN7EXAMPLE is not known to http:\/\/127\.0\.0\.1:9 \(InvalidAccessKeyId\)/],
      [sdkError('ExpiredToken', 400), 'Credentials', /session token of access key id AKIAIOSFODNN7EXAMPLE has expired/],
      [sdkError('AccessDenied', 403), 'AccessDenied', /access denied \(AccessDenied, HTTP 403\): check that the IAM or bucket policy lets access key id AKIAIOSFODNN7EXAMPLE use s3:PutObject on arn:aws:s3:::bkt\/pre\/fix\/\*/],
      [sdkError('NoSuchBucket', 404), 'NotFound', /bucket bkt does not exist on http:\/\/127\.0\.0\.1:9 \(NoSuchBucket\)/],
      [sdkError('PermanentRedirect', 301), 'Config', /bucket bkt is in another region than us-east-1 \(PermanentRedirect\): set the region/],
      [sdkError('RequestTimeTooSkewed', 403), 'Config', /clock/],
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', $metadata: { attempts: 10 } }), 'Failed', /cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\) after 10 attempts: check the endpoint/],
      [Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), 'Config', /TLS verification of http:\/\/127\.0\.0\.1:9 failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): give the CA bundle/],
      [sdkError('InternalError', 500, { $metadata: { httpStatusCode: 500, attempts: 10 } }), 'Failed', /^put s3:\/\/bkt\/pre\/fix\/k: failed after 10 attempts: InternalError \(HTTP 500\): InternalError message from the server$/],
    ];
    // Without an endpoint, an unknown host is AWS's name for the bucket and region: those are named.
    const { store: aws } = stubStore(() => Object.assign(new Error('getaddrinfo ENOTFOUND bkt.s3.us-eastt-1.amazonaws.com'), { code: 'ENOTFOUND', $metadata: { attempts: 3 } }), { endpoint: undefined });
    expect((await rejection(aws.put('k', Buffer.from('x'), 1))).message).to.equal(
      "put s3://bkt/pre/fix/k: cannot resolve the address of bucket bkt on AWS S3 in region us-east-1 (ENOTFOUND) after 3 attempts: check the region (region), the bucket name and the network's DNS",
    );
    for (const [error, code, message] of cases) {
      const { store } = stubStore(() => error);
      const err = await rejection(store.put('k', Buffer.from('x'), 1));
      expect(err.code, error.name).to.equal(code);
      expect(err.message, error.name).to.match(message);
    }
  });

  it('says where credentials were looked for when none are found', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'creds-'));
    const fileWith = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const good = fileWith('good', '[backup]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t-do-not-show\n');
    const { store } = stubStore(() => sdkError('CredentialsProviderError'), { credentialsFile: good, profile: 'backup' });
    const err = await rejection(store.get('k'));
    expect(err.code).to.equal('Credentials');
    expect(err.message).to.match(new RegExp(`^get s3://bkt/pre/fix/k: no usable S3 credentials in ${good} \\(profile backup\\)`));
    // What is wrong with the file, in words, never quoting it; a Velero Secret's copy is named as the Secret.
    const cases: Array<[string, string]> = [
      [join(dir, 'missing'), 'does not exist'],
      [fileWith('env-style', 'AWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY=s3cr3t-do-not-show\n'), 'has no [profile] section (as in "[default]", then "aws_access_key_id = …" and "aws_secret_access_key = …" lines)'],
      [fileWith('other', '[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t-do-not-show\n'), 'has no profile [backup] (it has [default])'],
      [fileWith('nokeys', '[backup]\nregion = eu-west-1\n'), 'has profile [backup] without aws_access_key_id and aws_secret_access_key (as in'],
    ];
    for (const [file, problem] of cases) {
      const { store: s } = stubStore(() => sdkError('CredentialsProviderError'), { credentialsFile: file, profile: 'backup', credentialsSource: 'key "cloud" of secret "cloud-credentials"' });
      const message = (await rejection(s.get('k'))).message;
      expect(message, file).to.contain(`get s3://bkt/pre/fix/k: no usable S3 credentials: key "cloud" of secret "cloud-credentials" ${problem}`);
      expect(message).not.to.contain('s3cr3t-do-not-show');
    }
    // On the SDK's default chain (no location file) a profile of the config file is not "missing", and the SDK's reason is kept.
    const saved = { creds: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'other');
    process.env.AWS_CONFIG_FILE = fileWith('config', '[profile backup]\nsso_session = corp\n');
    try {
      const { store: chain } = stubStore(() => sdkError('CredentialsProviderError'), { profile: 'backup' });
      expect((await rejection(chain.get('k'))).message).to.match(/no usable S3 credentials for profile backup \(is it in the AWS shared credentials or config file\?\): /);
      process.env.AWS_CONFIG_FILE = join(dir, 'missing');
      const { store: noProfile } = stubStore(() => sdkError('CredentialsProviderError'), { profile: 'backup' });
      expect((await rejection(noProfile.get('k'))).message).to.contain(`no usable S3 credentials: AWS_SHARED_CREDENTIALS_FILE ${join(dir, 'other')} has no profile [backup] (it has [default]) (`);
    } finally {
      for (const [k, v] of [['AWS_SHARED_CREDENTIALS_FILE', saved.creds], ['AWS_CONFIG_FILE', saved.config]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    const role = fileWith('role', '[backup]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n');
    const { store: assumed } = stubStore(() => sdkError('CredentialsProviderError'), { credentialsFile: role, profile: 'backup' });
    expect((await rejection(assumed.get('k'))).message).to.contain(`no usable S3 credentials in ${role} (profile backup): `);
    const { store: byProfile } = stubStore(() => sdkError('CredentialsProviderError'), { profile: 'nosuch' });
    expect((await rejection(byProfile.get('k'))).message).to.match(/no usable S3 credentials for profile nosuch \(is it in the AWS shared credentials or config file\?\)/);
  });

  it('head: missing is undefined; a 403 is explained by a 1-byte GET, since HEAD answers have no code', async () => {
    const { store, sent } = stubStore((c) => (c.constructor.name === 'HeadObjectCommand' ? sdkError('Forbidden', 403) : sdkError('SignatureDoesNotMatch', 403)));
    const err = await rejection(store.head('k'));
    expect(err.message).to.contain('is wrong (SignatureDoesNotMatch)');
    expect(sent).to.deep.equal(['HeadObjectCommand', 'GetObjectCommand']);
    const missing = stubStore((c) => (c.constructor.name === 'HeadObjectCommand' ? sdkError('NotFound', 404) : {}));
    expect(await missing.store.head('k')).to.equal(undefined);
    expect(missing.sent).to.deep.equal(['HeadObjectCommand', 'HeadBucketCommand']);
    expect(await missing.store.head('k2')).to.equal(undefined);
    expect(missing.sent.filter((n) => n === 'HeadBucketCommand')).to.have.length(1); // checked once
    // Denied both ways: without s3:ListBucket, S3 hides whether the object exists behind a 403.
    const denied = stubStore((c) => (c.constructor.name === 'HeadObjectCommand' ? sdkError('Forbidden', 403) : sdkError('AccessDenied', 403)));
    const hidden = await rejection(denied.store.head('k'));
    expect(hidden.code).to.equal('AccessDenied');
    expect(hidden.message).to.match(/use s3:GetObject on arn:aws:s3:::bkt\/pre\/fix\/\*, and s3:ListBucket on arn:aws:s3:::bkt: without it S3 answers 403, not 404, for an object that does not exist$/);
  });

  it('delete: per-key errors in a DeleteObjects answer fail the delete; NoSuchKey does not', async () => {
    const ok = stubStore(() => ({ Errors: [{ Key: 'pre/fix/a', Code: 'NoSuchKey' }] }));
    await ok.store.delete(['a', 'b']);
    const denied = stubStore(() => ({ Errors: [{ Key: 'pre/fix/a', Code: 'AccessDenied', Message: 'Access Denied' }, { Key: 'pre/fix/b', Code: 'AccessDenied' }] }));
    const err = await rejection(denied.store.delete(['a', 'b']));
    expect(err.code).to.equal('AccessDenied');
    expect(err.message).to.match(/^delete s3:\/\/bkt\/pre\/fix\/a: access denied \(AccessDenied\).*s3:DeleteObject.*\(and 1 more key\(s\) failed\)$/);
  });

  it('delete: transient per-key errors are retried with only the failed keys', async () => {
    const batches: string[][] = [];
    const { store } = stubStore((c) => {
      const keys = (c.input as { Delete: { Objects: Array<{ Key: string }> } }).Delete.Objects.map((o) => o.Key);
      batches.push(keys);
      return batches.length === 1 ? { Errors: [{ Key: 'pre/fix/b', Code: 'InternalError' }] } : {};
    });
    await store.delete(['a', 'b', 'c']);
    expect(batches).to.deep.equal([['pre/fix/a', 'pre/fix/b', 'pre/fix/c'], ['pre/fix/b']]);
  });

  it('delete: a transient error that names no key sends the whole batch again, never counts as done', async () => {
    const batches: string[][] = [];
    const { store } = stubStore((c) => {
      const keys = (c.input as { Delete: { Objects: Array<{ Key: string }> } }).Delete.Objects.map((o) => o.Key);
      batches.push(keys);
      return batches.length === 1 ? { Errors: [{ Code: 'SlowDown' }] } : {};
    });
    await store.delete(['a', 'b']);
    expect(batches).to.deep.equal([['pre/fix/a', 'pre/fix/b'], ['pre/fix/a', 'pre/fix/b']]);
    const always = stubStore(() => ({ Errors: [{ Code: 'SlowDown' }] }), { maxAttempts: 2 });
    const err = await rejection(always.store.delete(['a']));
    expect(always.sent).to.deep.equal(['DeleteObjectsCommand', 'DeleteObjectsCommand']);
    expect(err.message).to.match(/SlowDown/);
  });

  it('listings: only keys under the prefix asked for, also from a server that ignores Prefix (a deletion must never get another backup\'s keys)', async () => {
    const { store } = stubStore(() => ({
      IsTruncated: false,
      CommonPrefixes: [{ Prefix: 'pre/fix/b1/x/' }, { Prefix: 'pre/fix/b10/' }],
      Contents: [{ Key: 'pre/fix/b1/x', Size: 1 }, { Key: 'pre/fix/b10/y', Size: 1 }, { Key: 'pre/fix/b1', Size: 1 }, { Key: 'other/b1/z', Size: 1 }],
    }));
    const keys: string[] = [];
    for await (const o of store.list('b1/')) keys.push(o.key);
    expect(keys).to.deep.equal(['b1/x']);
    expect(await store.listDirectories('b1/')).to.deep.equal(['b1/x/']);
  });

  it('listings: a page marked truncated without a continuation token is an error, not the end', async () => {
    const { store } = stubStore(() => ({ IsTruncated: true, CommonPrefixes: [{ Prefix: 'pre/fix/b1/' }], Contents: [{ Key: 'pre/fix/b1/x', Size: 1 }] }));
    const folders = await rejection(store.listDirectories(''));
    expect(folders.message).to.equal('list s3://bkt/pre/fix/: the server said the listing is truncated but gave no continuation token');
    const keys = await rejection((async () => {
      for await (const _ of store.list('')) void _;
    })());
    expect(keys.message).to.equal(folders.message);
  });

  it('listings: a server that gives a continuation token again (A, B, A) fails the listing instead of looping', async () => {
    const tokens = ['A', 'B', 'A', 'B', 'A', 'B'];
    const { store, sent } = stubStore(() => ({ IsTruncated: true, NextContinuationToken: tokens.shift(), Contents: [{ Key: 'pre/fix/b1/x', Size: 1 }] }));
    const keys = await rejection((async () => {
      for await (const _ of store.list('')) void _;
    })());
    expect(keys.message).to.equal('list s3://bkt/pre/fix/: the server gave a continuation token it had given before, so the listing would never end');
    expect(sent).to.deep.equal(['ListObjectsV2Command', 'ListObjectsV2Command', 'ListObjectsV2Command']);
    const folders = await rejection(store.listDirectories(''));
    expect(folders.message).to.equal(keys.message);
  });

  it('listings: a 200 that is no ListBucketResult (a status page, not HTML) is an error naming the endpoint, not an empty listing', async () => {
    // What the AWS SDK makes of a 200 whose body has no ListBucketResult: no fields at all.
    const { store } = stubStore(() => ({ $metadata: { httpStatusCode: 200 } }));
    const err = await rejection((async () => {
      for await (const _ of store.list('')) void _;
    })());
    expect(err.message).to.equal('list s3://bkt/pre/fix/: http://127.0.0.1:9 answered 200 without an S3 listing (a web page or a console, not the S3 API?): check the endpoint (s3Url)');
    expect((await rejection(store.listDirectories(''))).message).to.equal(err.message);
    // An empty bucket's answer is a listing.
    const empty = stubStore(() => ({ Name: 'bkt', IsTruncated: false, KeyCount: 0 })).store;
    expect(await empty.listDirectories('')).to.deep.equal([]);
  });

  it('delete: batches of deleteBatchSize, and one-by-one where DeleteObjects is not implemented', async () => {
    const sizes: number[] = [];
    const batched = stubStore((c) => {
      sizes.push((c.input as { Delete: { Objects: unknown[] } }).Delete.Objects.length);
      return {};
    }, { deleteBatchSize: 1000 });
    await batched.store.delete(Array.from({ length: 2500 }, (_, i) => `k${i}`));
    expect(sizes.sort((a, b) => b - a)).to.deep.equal([1000, 1000, 500]);
    const legacy = stubStore((c) => (c.constructor.name === 'DeleteObjectsCommand' ? sdkError('NotImplemented', 501) : {}));
    await legacy.store.delete(['a', 'b']);
    expect(legacy.sent).to.deep.equal(['DeleteObjectsCommand', 'DeleteObjectCommand', 'DeleteObjectCommand']);
  });

  it('a ranged GET answered 200 (a proxy that drops Range) is refused, naming it; 206 is read', async () => {
    const whole = Buffer.from('0123456789');
    let status = 200;
    const { store } = stubStore(() => ({ $metadata: { httpStatusCode: status }, Body: Readable.from([status === 206 ? whole.subarray(2, 5) : whole]), ContentLength: status === 206 ? 3 : 10 }));
    const err = await rejection(store.get('k', { start: 2, end: 4 }));
    expect(err.code).to.equal('Failed');
    expect(err.message).to.equal('get s3://bkt/pre/fix/k: the server ignored the Range header (HTTP 200 instead of 206): a proxy in front of the store may drop it');
    status = 206;
    const chunks: Buffer[] = [];
    for await (const c of await store.get('k', { start: 2, end: 4 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).to.equal('234');
  });

  it('copies pinned to an ETag: CopyObject asks the server (a 412 is "Changed"); a multipart copy checks its HEAD first; listings give ETags without quotes', async () => {
    const inputs: Array<Record<string, unknown>> = [];
    const { store } = stubStore(
      (c) => {
        inputs.push(c.input as Record<string, unknown>);
        if (c.constructor.name === 'ListObjectsV2Command') return { IsTruncated: false, Name: 'bkt', Contents: [{ Key: 'pre/fix/a', Size: 1, ETag: '"abc"' }] };
        if (c.constructor.name === 'HeadObjectCommand') return { ContentLength: 20, ETag: '"def-2"' };
        if (c.constructor.name === 'CopyObjectCommand' && (c.input as { Key: string }).Key === 'pre/fix/gone') return sdkError('PreconditionFailed', 412);
        return {};
      },
      { multipartCopyThreshold: 10 },
    );
    const listed: unknown[] = [];
    for await (const o of store.list('')) listed.push(o);
    expect(listed).to.deep.equal([{ key: 'a', size: 1, etag: 'abc' }]);
    await store.copy('a', 'b', 1, 'abc');
    expect(inputs.at(-1)).to.include({ CopySourceIfMatch: '"abc"', Key: 'pre/fix/b' });
    await store.copy('a', 'c', 1);
    expect(inputs.at(-1)).to.not.have.property('CopySourceIfMatch');
    const refused = await rejection(store.copy('a', 'gone', 1, 'abc'));
    expect(refused.code).to.equal('Changed');
    expect(refused.message).to.match(/copy s3:\/\/bkt\/pre\/fix\/a: the object was replaced/);
    const sentBefore = inputs.length;
    const big = await rejection(store.copy('big', 'big2', 20, 'abc'));
    expect(big.code).to.equal('Changed');
    expect(big.message).to.equal('copy s3://bkt/pre/fix/big: the object was replaced (its ETag is "def-2", abc was expected)');
    expect(inputs.length - sentBefore, 'the HEAD only: no multipart upload started').to.equal(1);
  });

  it('checks sizes and keys before sending anything', async () => {
    const { store, sent } = stubStore(() => ({}));
    expect((await rejection(store.put('k', Buffer.from('abc'), 4))).code).to.equal('SizeMismatch');
    expect((await rejection(store.put('k', Readable.from([Buffer.from('abc')]), 4))).code).to.equal('SizeMismatch');
    expect((await rejection(store.put('../k', Buffer.from('abc'), 3))).code).to.equal('InvalidKey');
    expect((await rejection(store.put('x'.repeat(1020), Buffer.from('abc'), 3))).message).to.match(/longer than S3's 1024 bytes/);
    expect((await rejection(store.get('k', { start: 5, end: 1 }))).code).to.equal('InvalidRange');
    expect(sent).to.deep.equal([]);
  });
});

describe('S3 store pointed at a web page (a console URL given as the endpoint)', () => {
  const PAGE = '<html><body>Welcome to the console</body></html>';
  let server: LoopbackServer;
  let endpoint: string;
  const requests: string[] = [];
  /** What the page's server answers; a console answers every path with its page. */
  let answer = { status: 200, type: 'text/html; charset=utf-8', body: PAGE };

  before(async () => {
    server = await startLoopbackServer((req, res) => {
      requests.push(req.method!);
      req.resume();
      res.writeHead(answer.status, { 'content-type': answer.type, 'content-length': Buffer.byteLength(answer.body) });
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    });
    endpoint = server.url;
  });
  after(() => server.close());
  beforeEach(() => {
    requests.length = 0;
    answer = { status: 200, type: 'text/html; charset=utf-8', body: PAGE };
  });

  const store = (maxAttempts = 3) =>
    new S3Store({ bucket: 'bkt', prefix: 'pre/fix', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET }, maxAttempts });
  const says = (operation: string, key: string) =>
    `${operation} s3://bkt/pre/fix/${key}: ${endpoint} answered with a web page (Content-Type text/html; charset=utf-8), not S3 (a console or a proxy, not the S3 API?): check the endpoint (s3Url)`;

  it('every operation refuses a 200 HTML answer at once, naming the endpoint: no marker "exists", no upload "lands"', async () => {
    const s3 = store();
    const checks: Array<[string, string, () => Promise<unknown>]> = [
      // The backup's first question: is there a complete marker already? A 200 would say yes.
      ['head', 'b1/victoria_complete.ignore', () => s3.head('b1/victoria_complete.ignore')],
      // An upload the page "accepts" would be lost while the backup goes on.
      ['put', 'b1/data/part.bin', () => s3.put('b1/data/part.bin', Buffer.from('bytes'), 5)],
      ['get', 'b1/manifest.json', () => s3.get('b1/manifest.json')],
      // The restore's reads: the direct path hands a page over to the client, which names it.
      ['get', 'b1/data/part.bin', () => s3.readInto('b1/data/part.bin', Buffer.byteLength(PAGE), async () => undefined)],
      ['list', '', () => collect(s3.list(''))],
    ];
    for (const [operation, key, call] of checks) {
      const err = await rejection(call());
      expect(err).to.be.instanceOf(StoreError);
      expect(err.code, err.message).to.equal('Config');
      expect(err.message).to.equal(says(operation, key));
    }
    // Not retried: one request per operation, and one more for the direct read that gave up.
    expect(requests).to.deep.equal(['HEAD', 'PUT', 'GET', 'GET', 'GET', 'GET']);
  });

  it('an HTML error page (a proxy in trouble) stays an error of its status, retried as before', async () => {
    answer = { status: 502, type: 'text/html', body: PAGE };
    const err = await rejection(store(2).head('b1/victoria_complete.ignore'));
    expect(err.code).to.equal('Failed');
    expect(err.message).not.to.contain('web page');
    expect(requests).to.deep.equal(['HEAD', 'HEAD']);
  });

  it('S3 answers pass: an object of another Content-Type, and an empty answer labelled text/html (as moto labels its PUT answers)', async () => {
    answer = { status: 200, type: 'binary/octet-stream', body: PAGE };
    expect((await readAll(await store().get('b1/manifest.json'))).toString()).to.equal(PAGE);
    answer = { status: 200, type: 'text/html; charset=utf-8', body: '' };
    await store().put('b1/data/part.bin', Buffer.from('bytes'), 5);
    expect(requests).to.deep.equal(['GET', 'PUT']);
  });
});

describe('S3 store views bound to a signal (withSignal)', () => {
  /** A server that hangs every PUT of an object or a part, and answers the rest of a multipart upload. */
  let server: LoopbackServer;
  let endpoint: string;
  const requests: string[] = [];
  const hanging = new Set<import('node:http').ServerResponse>();

  before(async () => {
    server = await startLoopbackServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const what = `${req.method} ${url.search.includes('uploads') ? 'create' : url.searchParams.has('partNumber') ? 'part' : url.searchParams.has('uploadId') ? 'upload' : 'object'}`;
      requests.push(what);
      req.resume();
      if (req.method === 'PUT') {
        hanging.add(res);
        return;
      }
      if (what === 'POST create') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end('<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>pre/fix/big</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>');
        return;
      }
      res.writeHead(req.method === 'DELETE' ? 204 : 200, { 'content-length': '0' });
      res.end();
    });
    endpoint = server.url;
  });
  after(() => {
    for (const res of hanging) res.destroy();
    return server.close();
  });
  beforeEach(() => {
    requests.length = 0;
  });

  const store = () =>
    new S3Store({ bucket: 'bkt', prefix: 'pre/fix', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET }, partSize: 5 * 1024 * 1024, maxAttempts: 3 });

  it('ends a hung request when the signal aborts, and the store it came from goes on working', async () => {
    const s3 = store();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('item timeout')), 200);
    const err = await rejection(s3.withSignal(controller.signal).put('k', Buffer.from('x'), 1));
    // Not the socket timeout (120 s), and not retried.
    expect(Date.now() - started).to.be.below(5000);
    expect(err.message).to.equal('put s3://bkt/pre/fix/k: stopped: item timeout');
    expect(requests).to.deep.equal(['PUT object']);
    expect(await s3.head('k')).to.deep.include({ key: 'k', size: 0 });
    s3.destroy();
  });

  it('a multipart upload ended by the signal is still aborted on the server (the abort has a deadline of its own)', async () => {
    const s3 = store();
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('item timeout')), 200);
    const err = await rejection(s3.withSignal(controller.signal).put('big', Buffer.alloc(6 * 1024 * 1024), 6 * 1024 * 1024));
    expect(err.message).to.equal('put s3://bkt/pre/fix/big: stopped: item timeout');
    expect(requests.filter((r) => r !== 'PUT part')).to.deep.equal(['POST create', 'DELETE upload']);
    s3.destroy();
  });
});

describe('S3 retry strategy', () => {
  const info = (errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR', error: object = {}) => ({ errorType, error: error as never });

  it('retries transient errors and throttling up to maxAttempts, with growing, capped backoff', async () => {
    const events: RetryEvent[] = [];
    const s = new PersistentRetryStrategy({ maxAttempts: 4, baseDelayMs: 100, throttlingBaseDelayMs: 1000, maxDelayMs: 5000, onRetry: (e) => events.push(e) });
    let token = await s.acquireInitialRetryToken();
    token = await s.refreshRetryTokenForRetry(token, info('TRANSIENT', { name: 'TimeoutError' }));
    expect(token.getRetryCount()).to.equal(1);
    expect(token.getRetryDelay()).to.be.within(0, 100);
    token = await s.refreshRetryTokenForRetry(token, info('THROTTLING', { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }));
    expect(token.getRetryDelay()).to.be.within(0, 2000);
    token = await s.refreshRetryTokenForRetry(token, info('TRANSIENT', { code: 'ECONNRESET' }));
    let refused = false;
    await s.refreshRetryTokenForRetry(token, info('TRANSIENT')).catch(() => (refused = true));
    expect(refused, 'the 4th attempt was the last').to.equal(true);
    expect(events.map((e) => [e.attempt, e.reason, e.status])).to.deep.equal([
      [1, 'TimeoutError', undefined],
      [2, 'SlowDown', 503],
      [3, 'ECONNRESET', undefined],
    ]);
  });

  it('has no retry quota: a long outage does not stop retries of new requests', async () => {
    const s = new PersistentRetryStrategy({ maxAttempts: 3, baseDelayMs: 0, throttlingBaseDelayMs: 0 });
    for (let i = 0; i < 500; i++) {
      const t = await s.acquireInitialRetryToken();
      await s.refreshRetryTokenForRetry(t, info('TRANSIENT'));
    }
  });

  it('does not retry client errors, but does retry S3 codes the SDK misses', async () => {
    const s = new PersistentRetryStrategy({ maxAttempts: 5, baseDelayMs: 0 });
    const t = await s.acquireInitialRetryToken();
    for (const name of ['AccessDenied', 'NoSuchKey', 'SignatureDoesNotMatch']) {
      let refused = false;
      await s.refreshRetryTokenForRetry(t, info('CLIENT_ERROR', { name })).catch(() => (refused = true));
      expect(refused, name).to.equal(true);
    }
    for (const name of ['IncompleteBody', 'BadDigest', 'InternalError', 'OperationAborted']) {
      expect((await s.refreshRetryTokenForRetry(t, info('CLIENT_ERROR', { name }))).getRetryCount(), name).to.equal(1);
    }
    expect((await s.refreshRetryTokenForRetry(t, info('CLIENT_ERROR', { code: 'ERR_STREAM_PREMATURE_CLOSE' }))).getRetryCount()).to.equal(1);
  });

  it('retries every 5xx a proxy or CDN may answer (509, 520–524), but not 501 Not Implemented', async () => {
    const s = new PersistentRetryStrategy({ maxAttempts: 5, baseDelayMs: 0 });
    const t = await s.acquireInitialRetryToken();
    for (const status of [509, 520, 522, 524]) {
      expect((await s.refreshRetryTokenForRetry(t, info('SERVER_ERROR', { name: 'Unknown', $metadata: { httpStatusCode: status } }))).getRetryCount(), String(status)).to.equal(1);
    }
    let refused = false;
    await s.refreshRetryTokenForRetry(t, info('SERVER_ERROR', { name: 'NotImplemented', $metadata: { httpStatusCode: 501 } })).catch(() => (refused = true));
    expect(refused, '501').to.equal(true);
  });

  it('honours Retry-After, within the cap', async () => {
    const s = new PersistentRetryStrategy({ maxAttempts: 5, baseDelayMs: 0, maxDelayMs: 3000 });
    const t = await s.acquireInitialRetryToken();
    const next = await s.refreshRetryTokenForRetry(t, { errorType: 'THROTTLING', retryAfterHint: new Date(Date.now() + 2000) });
    expect(next.getRetryDelay()).to.be.within(1500, 2000);
  });
});

describe('part buffer pool', () => {
  it('lends at most maxBuffers, reuses returned ones, drops failed ones, and lets all go when idle', () => {
    const pool = new PartBufferPool(1024, 2);
    pool.enter();
    const a = pool.tryTake()!;
    const b = pool.tryTake()!;
    expect(pool.tryTake()).to.equal(undefined);
    expect(pool.owns(a) && pool.owns(b)).to.equal(true);
    expect(pool.owns(Buffer.alloc(1024))).to.equal(false);
    pool.give(a, true);
    expect(pool.tryTake()).to.equal(a);
    pool.give(b, false); // a failed request's buffer is not reused
    expect(pool.stats).to.deep.equal({ allocated: 1, free: 0, users: 1 });
    const c = pool.tryTake()!;
    expect(c).not.to.equal(b);
    pool.give(a, true);
    pool.give(c, true);
    pool.leave();
    expect(pool.stats).to.deep.equal({ allocated: 0, free: 0, users: 0 });
  });
});
