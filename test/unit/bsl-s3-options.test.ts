/** S3 options from a Velero BackupStorageLocation's config, in velero-plugin-for-aws's keys. */
import { expect } from 'chai';
import { bslS3Options } from '../../src/actions/bsl-s3-options.js';
import { StoreError } from '../../src/store/errors.js';

describe('S3 options from a BackupStorageLocation config', () => {
  it('maps every velero-plugin-for-aws key it supports', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const r = bslS3Options({
      bucket: 'velero',
      prefix: 'cluster-a',
      region: 'eu-central-1',
      s3Url: 'https://minio.example:9000',
      publicUrl: 'https://public.example',
      s3ForcePathStyle: 'true',
      insecureSkipTLSVerify: 'False',
      caCert: pem,
      serverSideEncryption: 'aws:kms',
      kmsKeyId: 'alias/backups',
      checksumAlgorithm: 'SHA256',
      profile: 'backup',
      credentialsFile: '/tmp/credentials/velero/cloud-credentials-cloud',
      enableSharedConfig: 'true',
    });
    expect(r.options).to.deep.equal({
      region: 'eu-central-1',
      endpoint: 'https://minio.example:9000',
      forcePathStyle: true,
      insecureSkipTLSVerify: false,
      caCert: pem,
      serverSideEncryption: 'aws:kms',
      kmsKeyId: 'alias/backups',
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      responseChecksumValidation: 'WHEN_SUPPORTED',
      checksumAlgorithm: 'SHA256',
      profile: 'backup',
      credentialsFile: '/tmp/credentials/velero/cloud-credentials-cloud',
    });
    expect(r.publicUrl).to.equal('https://public.example');
    expect(r.warnings).to.deep.equal([]);
  });

  it('maps checksumAlgorithm: absent = SDK default (CRC32), "" = none, an algorithm = that one', () => {
    const absent = bslS3Options({}).options;
    expect(absent.requestChecksumCalculation).to.equal(undefined);
    expect(absent.responseChecksumValidation).to.equal(undefined);
    expect(absent.checksumAlgorithm).to.equal(undefined);
    expect(bslS3Options({ checksumAlgorithm: '' }).options).to.include({ requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    expect(bslS3Options({ checksumAlgorithm: '' }).options.checksumAlgorithm).to.equal(undefined);
    for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256']) {
      expect(bslS3Options({ checksumAlgorithm: alg }).options).to.include({ checksumAlgorithm: alg, requestChecksumCalculation: 'WHEN_SUPPORTED' });
    }
    expect(() => bslS3Options({ checksumAlgorithm: 'MD5' })).to.throw(StoreError, /invalid checksumAlgorithm "MD5"/);
    expect(() => bslS3Options({ checksumAlgorithm: 'crc32' })).to.throw(StoreError);
  });

  it('parses booleans as Go does, and defaults path style to false as Velero does', () => {
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(bslS3Options({ s3ForcePathStyle: t }).options.forcePathStyle).to.equal(true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(bslS3Options({ insecureSkipTLSVerify: f }).options.insecureSkipTLSVerify).to.equal(false);
    expect(bslS3Options({}).options.forcePathStyle).to.equal(false);
    expect(() => bslS3Options({ s3ForcePathStyle: 'yes' })).to.throw(StoreError, /could not parse BackupStorageLocation config s3ForcePathStyle \(expected bool\): "yes"/);
  });

  it('refuses what would silently weaken the backup: SSE-C, bad SSE values, bad URLs', () => {
    expect(() => bslS3Options({ customerKeyEncryptionFile: '/credentials/sse-c' })).to.throw(StoreError, /customerKeyEncryptionFile \(SSE-C\) is not supported/);
    expect(() => bslS3Options({ customerKeyEncryptionSecret: 'encryption-key/customer-key' })).to.throw(StoreError, /customerKeyEncryptionSecret \(SSE-C\) is not supported/);
    expect(() => bslS3Options({ serverSideEncryption: 'aws:kms:triple' })).to.throw(StoreError, /serverSideEncryption must be one of AES256, aws:kms, aws:kms:dsse, got "aws:kms:triple"/);
    // As velero-plugin-for-aws: dual-layer KMS passes through, and a KMS key wins over AES256 (with a warning).
    expect(bslS3Options({ serverSideEncryption: 'aws:kms:dsse', kmsKeyId: 'k' }).options).to.include({ serverSideEncryption: 'aws:kms:dsse', kmsKeyId: 'k' });
    const kms = bslS3Options({ serverSideEncryption: 'AES256', kmsKeyId: 'k' });
    expect(kms.options).to.include({ serverSideEncryption: 'aws:kms', kmsKeyId: 'k' });
    expect(kms.warnings).to.deep.equal(['serverSideEncryption AES256 is overridden by kmsKeyId: objects are encrypted with aws:kms and that key, as velero-plugin-for-aws does']);
    expect(() => bslS3Options({ s3Url: 'minio:9000' })).to.throw(StoreError, /invalid s3Url "minio:9000"/);
    expect(() => bslS3Options({ publicUrl: 'ftp://x' })).to.throw(StoreError, /invalid publicUrl/);
    expect(() => bslS3Options({ region: 'us east' })).to.throw(StoreError, /^BackupStorageLocation config: invalid region "us east": a region name such as us-east-1/);
    expect(bslS3Options({ region: 'fr-par' }).options.region).to.equal('fr-par');
    // A user and password written into it are not repeated in the error.
    expect(() => bslS3Options({ s3Url: 'admin:hunter2@minio:9000' })).to.throw(StoreError, /^BackupStorageLocation config: invalid s3Url "…@minio:9000": it must be a URL starting with http:\/\/ or https:\/\//);
    expect(() => bslS3Options({ s3Url: 'htp://admin:hunter2@minio:9000' })).to.throw(StoreError, /invalid s3Url "htp:\/\/…@minio:9000"/);
  });

  it('maps tagging as given, and refuses a tag set S3 would refuse, naming the tag', () => {
    expect(bslS3Options({ tagging: 'team=observability&env=prod' }).options.tagging).to.equal('team=observability&env=prod');
    expect(bslS3Options({ tagging: 'team=observability' }).options.tagging).to.equal('team=observability');
    expect(() => bslS3Options({ tagging: 'team=a&team=b' })).to.throw(StoreError, /^BackupStorageLocation config: tagging "team=a&team=b": tag key team appears twice/);
    expect(() => bslS3Options({ tagging: `k=${'v'.repeat(257)}` })).to.throw(StoreError, /the value of tag k has more than 256 characters/);
  });

  it('ignores empty values and names what it ignores', () => {
    const r = bslS3Options({ region: '', s3Url: '', profile: '', kmsKeyId: '', tagging: '', signatureVersion: '1', newFutureKey: 'x', undefinedKey: undefined });
    expect(r.options).to.deep.equal({ forcePathStyle: false });
    expect(r.warnings).to.deep.equal([
      'signatureVersion 1 is ignored: requests are signed with SigV4',
      'unknown key newFutureKey is ignored',
    ]);
    expect(bslS3Options({ signatureVersion: '4' }).warnings).to.deep.equal([]);
  });

  it('reads nothing from files or the environment (pure)', () => {
    const before = { ...process.env };
    const r = bslS3Options({ credentialsFile: '/does/not/exist', caCert: '' });
    expect(r.options.credentialsFile).to.equal('/does/not/exist');
    expect(r.options.caCert).to.equal(undefined);
    expect(process.env).to.deep.equal(before);
  });
});
