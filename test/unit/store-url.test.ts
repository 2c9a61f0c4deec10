/** Store locations (s3://bucket/prefix, file:///dir), and the CLI's store flags. */
import { expect } from 'chai';
import { inCliTerms } from '../../src/cli/advice.js';
import { openStoreFromFlags, splitBackupPath } from '../../src/cli/store-flags.js';
import { isUsageError, UsageError } from '../../src/common/usage-error.js';
import { StoreError } from '../../src/store/errors.js';
import { FileStore } from '../../src/store/file.js';
import { S3Store } from '../../src/store/s3.js';
import { openStore, parseStoreLocation } from '../../src/store/url.js';

function refusal(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected an error');
}

describe('store locations', () => {
  it('parses s3://bucket/prefix, trimming trailing slashes', () => {
    expect(parseStoreLocation('s3://my-bucket/velero/plugins/victoria')).to.deep.equal({ kind: 's3', bucket: 'my-bucket', prefix: 'velero/plugins/victoria' });
    expect(parseStoreLocation('s3://b.dots/p/')).to.deep.equal({ kind: 's3', bucket: 'b.dots', prefix: 'p' });
  });

  it('refuses a bucket without a prefix, and says why', () => {
    for (const root of ['s3://bucket', 's3://bucket/', 's3://bucket//']) {
      const err = refusal(() => parseStoreLocation(root));
      expect(err.code).to.equal('InvalidKey');
      expect(err.message).to.contain('non-empty prefix');
      expect(err.message).to.contain('vmbackup');
      expect(err.message).to.contain('<bsl-prefix>/plugins/');
    }
    expect(refusal(() => parseStoreLocation('s3://bucket')).message).to.contain('no prefix');
    expect(refusal(() => parseStoreLocation('s3://bucket/')).message).to.contain('bucket root');
  });

  it('refuses prefixes that would make odd keys, and bad bucket names', () => {
    for (const root of ['s3://bucket//p', 's3://bucket/a//b', 's3://bucket/a/../b', 's3://bucket/a\\b', 's3://bucket/a?x=1', 's3:///p', 's3://bu cket/p', 's3://-x/p']) {
      expect(() => parseStoreLocation(root), root).to.throw(StoreError);
    }
  });

  it('parses file:///abs/dir (percent-decoded), refuses relative, remote and root locations', () => {
    expect(parseStoreLocation('file:///var/backups/victoria')).to.deep.equal({ kind: 'file', path: '/var/backups/victoria' });
    expect(parseStoreLocation('file:///var/my%20backups/')).to.deep.equal({ kind: 'file', path: '/var/my backups' });
    expect(parseStoreLocation('file://localhost/srv/b')).to.deep.equal({ kind: 'file', path: '/srv/b' });
    expect(() => parseStoreLocation('file://host.example/srv')).to.throw(StoreError, /absolute local file URL/);
    expect(() => parseStoreLocation('file:///')).to.throw(StoreError, /file system root/);
    // A query or fragment is not part of the path: file:///b/vm#1 would silently be /b/vm.
    expect(() => parseStoreLocation('file:///b/vm#1')).to.throw(StoreError, /"\?" or "#" would end the path here: write it as %3F or %23/);
    expect(() => parseStoreLocation('file:///b/vm?x=1')).to.throw(StoreError, /%3F or %23/);
    expect(parseStoreLocation('file:///b/vm%231')).to.deep.equal({ kind: 'file', path: '/b/vm#1' });
    expect(() => parseStoreLocation('file:///b/100%')).to.throw(StoreError, /write a "%" itself as %25/);
    // file:./b and file:b parse as the URL file:///b: a relative path would become /b.
    for (const relative of ['file:./backups', 'file:backups', 'file:/var/backups']) {
      expect(() => parseStoreLocation(relative), relative).to.throw(StoreError, /expected file:\/\/\/absolute\/dir, with three slashes/);
    }
    expect(() => parseStoreLocation('/var/backups')).to.throw(StoreError, /expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir/);
    expect(() => parseStoreLocation('gs://bucket/p')).to.throw(StoreError);
  });

  it('opens the right store with its options', () => {
    const f = openStore('file:///tmp/x', { file: { fsync: false } });
    expect(f).to.be.instanceOf(FileStore);
    expect(f.location).to.equal('file:///tmp/x');
    const s = openStore('s3://bucket/a/b', { s3: { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1', credentials: { accessKeyId: 'AKIA', secretAccessKey: 'secret' } } });
    expect(s).to.be.instanceOf(S3Store);
    expect(s.location).to.equal('s3://bucket/a/b');
    expect(s.location).not.to.contain('secret');
    (s as S3Store).destroy();
  });

  it('reports S3 option mistakes when opening', () => {
    expect(() => openStore('s3://b/p', { s3: { endpoint: 'minio:9000' } })).to.throw(StoreError, /must start with http:\/\/ or https:\/\//);
    expect(() => openStore('s3://b/p', { s3: { endpoint: 'http://user:pw@minio:9000' } })).to.throw(StoreError, /must not contain credentials/);
    expect(() => openStore('s3://b/p', { s3: { partSize: 1024 } })).to.throw(StoreError, /partSize must be an integer from 5242880/);
    expect(() => openStore('s3://b/p', { s3: { caCert: 'not a pem' } })).to.throw(StoreError, /not a PEM certificate bundle/);
    expect(() => openStore('s3://b/p', { s3: { caCertFile: '/nonexistent/ca.pem' } })).to.throw(StoreError, /cannot read the CA bundle/);
    expect(() => openStore('s3://b/p', { s3: { serverSideEncryption: 'AES256', kmsKeyId: 'k' } })).to.throw(StoreError, /kmsKeyId needs serverSideEncryption aws:kms or aws:kms:dsse, not AES256/);
    expect(() => openStore('s3://b/p', { s3: { credentials: { accessKeyId: 'AKIA', secretAccessKey: '' } } })).to.throw(StoreError, /both an access key id and a secret/);
  });
});

describe('CLI store flags', () => {
  it('a bad flag value is named as the flag, not as the location key it maps to', () => {
    expect(() => openStoreFromFlags('s3://bkt/pfx', { 's3-endpoint': 'not a url' })).to.throw(/^invalid --s3-endpoint "not a url": it must be a URL starting with http:\/\/ or https:\/\/$/);
    expect(() => openStoreFromFlags('s3://bkt/pfx', { 'checksum-algorithm': 'CRC64NVME' })).to.throw(/^invalid --checksum-algorithm "CRC64NVME": use "" \(none\), CRC32/);
    // The user's own text is quoted as given: a tag named after a key is not rewritten.
    expect(() => openStoreFromFlags('s3://bkt/pfx', { tagging: 'kmsKeyId' })).to.throw(/^--tagging "kmsKeyId": "kmsKeyId" has no "="/);
  });

  it('what the flags or the root get wrong is a usage error (exit 2)', () => {
    for (const [root, flags, message] of [
      ['/tmp/nope', {}, /^invalid store location "\/tmp\/nope": expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir$/],
      ['s3://bkt', {}, /^invalid store location "s3:\/\/bkt": no prefix/],
      ['s3://bkt/pfx', { sse: 'foo' }, /^--sse must be one of AES256, aws:kms/],
      ['s3://bkt/pfx', { 's3-force-path-style': true, 'no-s3-force-path-style': true }, /^give --s3-force-path-style or --no-s3-force-path-style, not both$/],
    ] as const) {
      const err = (() => {
        try {
          openStoreFromFlags(root, flags);
        } catch (e) {
          return e;
        }
        throw new Error(`${root} opened`);
      })();
      expect(isUsageError(err), root).to.equal(true);
      expect((err as Error).message).to.match(message);
    }
  });

  it('--no-s3-force-path-style gives virtual-hosted URLs with --s3-endpoint (the default there is path style)', async () => {
    const style = async (flags: Parameters<typeof openStoreFromFlags>[1]) => {
      const store = openStoreFromFlags('s3://bkt/pfx', { 's3-endpoint': 'http://s3.example:9000', region: 'r', ...flags }) as S3Store;
      try {
        return store.client.config.forcePathStyle;
      } finally {
        store.destroy();
      }
    };
    expect(await style({})).to.equal(true);
    expect(await style({ 'no-s3-force-path-style': true })).to.equal(false);
    // restore parses with allowNegative: the same flag arrives as s3-force-path-style false.
    expect(await style({ 's3-force-path-style': false })).to.equal(false);
  });

  it('--src ROOT/NAME: a missing name or a bare path says what to write instead', () => {
    expect(splitBackupPath('s3://bkt/pfx/b1/')).to.deep.equal({ root: 's3://bkt/pfx', name: 'b1' });
    expect(() => splitBackupPath('s3://bkt/victoria')).to.throw(
      UsageError,
      /^--src "s3:\/\/bkt\/victoria" is not ROOT\/NAME: its last path segment is the backup's name, and "s3:\/\/bkt" before it is not a backup location .*; list the backups with: velero-plugin-victoria list --dst s3:\/\/bkt\/victoria$/,
    );
    expect(() => splitBackupPath('/backups/b1')).to.throw(UsageError, /^--src "\/backups\/b1" is a path: write it as a file URL, file:\/\/\/backups\/b1$/);
    expect(() => splitBackupPath('s3://bkt')).to.throw(UsageError, /is not ROOT\/NAME/);
  });

  it('the store\'s advice names flags and where credentials come from', () => {
    expect(inCliTerms('list s3://b/p: cannot reach http://x (ECONNREFUSED): check the endpoint (s3Url) and the network')).to.equal(
      'list s3://b/p: cannot reach http://x (ECONNREFUSED): check the endpoint (--s3-endpoint) and the network',
    );
    expect(inCliTerms("TLS verification of https://x failed (SELF_SIGNED_CERT_IN_CHAIN): give the CA bundle that signed the server's certificate as caCert, or set insecureSkipTLSVerify")).to.match(
      /with --ca-cert-file, or pass --insecure-skip-tls-verify$/,
    );
    expect(inCliTerms('bucket b is in another region than us-east-1 (PermanentRedirect): set the region')).to.equal('bucket b is in another region than us-east-1 (PermanentRedirect): set --region');
    expect(inCliTerms('list s3://b/p: no usable S3 credentials: Could not load credentials from any providers')).to.match(
      /^list s3:\/\/b\/p: no usable S3 credentials: Could not load credentials from any providers: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile/,
    );
  });
});
