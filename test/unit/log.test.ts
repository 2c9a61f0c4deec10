import { expect } from 'chai';
import { createLogger, formatLine, levelFromVelero, MAX_LINE_BYTES } from '../../src/velero/log.js';
import { redact } from '../../src/common/redact.js';

describe('Velero-safe log lines', () => {
  it('writes string @level and @message and no @timestamp', () => {
    const entry = JSON.parse(formatLine('info', 'hello', { files: 3 }));
    expect(entry).to.deep.equal({ '@level': 'info', '@message': 'hello', files: '3' });
  });

  it('turns name/namespace/resource of any type into strings (Velero panics on anything else)', () => {
    const entry = JSON.parse(formatLine('warn', 'x', { name: 5, namespace: null, resource: { a: 1 } }));
    expect(entry.name).to.equal('5');
    expect(entry.namespace).to.equal('null');
    expect(entry.resource).to.equal('{"a":1}');
    for (const value of Object.values(entry)) expect(value).to.be.a('string');
  });

  it('never lets fields override the keys the host interprets', () => {
    const entry = JSON.parse(formatLine('debug', 'm', { '@level': 7, '@message': {}, '@timestamp': 'now', level: 'x', timestamp: 1 }));
    expect(entry).to.deep.equal({ '@level': 'debug', '@message': 'm' });
  });

  it('keeps an error field as error: Velero\'s log counter adds it to the message `velero backup describe` lists (its ErrorLocationHook lets a string pass since v1.4)', () => {
    const entry = JSON.parse(formatLine('error', 'crashed', { error: 'Error: boom', name: 'p' }));
    expect(entry).to.deep.equal({ '@level': 'error', '@message': 'crashed', error: 'Error: boom', name: 'p' });
  });

  it('keeps lines under the host 64 KiB buffer, also for huge multi-byte messages and fields', () => {
    const huge = 'é'.repeat(200_000);
    for (const line of [formatLine('error', huge), formatLine('info', 'x', { a: huge, b: huge, c: huge, d: huge, e: huge, f: huge, g: huge, h: huge, i: huge, j: huge, k: huge, l: huge, m: huge, n: huge, o: huge, p: huge, q: huge })]) {
      expect(Buffer.byteLength(line)).to.be.lessThan(MAX_LINE_BYTES + 1);
      expect(JSON.parse(line)['@level']).to.be.a('string');
    }
  });

  it('never writes a newline inside a line', () => {
    expect(formatLine('info', 'a\nb', { e: 'c\r\nd' })).not.to.match(/[\r\n]/);
  });

  it('redacts presigned URL signatures and credentials', () => {
    const line = formatLine('info', 'GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA123%2F20261121&X-Amz-Signature=abcdef&X-Amz-Expires=60', {
      error: 'aws_secret_access_key = wJalrXUtnFEMI',
    });
    expect(line).not.to.contain('abcdef');
    expect(line).not.to.contain('AKIA123');
    expect(line).not.to.contain('wJalrXUtnFEMI');
    expect(line).to.contain('X-Amz-Expires=60');
    // A token is masked; S3's error code for an expired one is not a token.
    const tokens = formatLine('info', 'sessionToken=IQoJb3JpZ2luX2VjE x-amz-security-token: FwoGZXIvYXdzE HTTP 400 ExpiredToken: The provided token has expired.', {});
    expect(tokens).not.to.contain('IQoJb3JpZ2luX2VjE');
    expect(tokens).not.to.contain('FwoGZXIvYXdzE');
    expect(tokens).to.contain('ExpiredToken: The provided token has expired.');
    // A bearer token on its own, and a password in a URL; a plain URL and an e-mail-like path stay.
    expect(redact('got Bearer eyJhbGciOi.x.y from the mount')).to.equal('got Bearer REDACTED from the mount');
    expect(redact('cannot reach http://admin:hunter2@minio:9000/b (ECONNREFUSED)')).to.equal('cannot reach http://admin:REDACTED@minio:9000/b (ECONNREFUSED)');
    expect(redact('https://minio:9000/b/k and s3://bkt/user@example/x')).to.equal('https://minio:9000/b/k and s3://bkt/user@example/x');
    // A presigned URL percent-encoded inside another, the signature as a header, s3cmd's and MinIO's names for the secret.
    expect(redact('https://proxy/?to=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3Dabc123%26X-Amz-Security-Token%3DFwoG%2Fx%26X-Amz-Expires%3D60 next')).to.equal(
      'https://proxy/?to=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3DREDACTED%26X-Amz-Security-Token%3DREDACTED%26X-Amz-Expires%3D60 next',
    );
    expect(redact('X-Amz-Signature: 0123abcd, host: b')).to.equal('X-Amz-Signature: REDACTED, host: b');
    expect(redact('secret_key = wJalr secretKey: "wJalr2" secret-key=wJalr3')).to.equal('secret_key = REDACTED secretKey: "REDACTED" secret-key=REDACTED');
  });

  it('redacts kubeconfig client keys and PEM private keys, whole or cut off', () => {
    const text = redact('  client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLQ==\n  client-certificate-data: "LS0tQ0VSVA=="\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter');
    expect(text).not.to.match(/LS0tLS1CRUdJ|LS0tQ0VSVA|MIIEpAIBAAKCAQEA/);
    expect(text).to.contain('client-key-data: REDACTED').and.to.contain('after');
    expect(redact('key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq')).to.equal('key: -----BEGIN PRIVATE KEY----- REDACTED');
  });

  it('masks the whole value of a field whose name says it is a credential', () => {
    const entry = JSON.parse(formatLine('info', 'm', { secretAccessKey: 'wJalrXUtnFEMI', authKey: 'k1', sessionToken: 'IQoJ', files: 3 }));
    expect(entry).to.deep.equal({ '@level': 'info', '@message': 'm', secretAccessKey: 'REDACTED', authKey: 'REDACTED', sessionToken: 'REDACTED', files: '3' });
  });

  it('filters by level and maps Velero level names', () => {
    const lines: string[] = [];
    const log = createLogger({ level: levelFromVelero('warning'), sink: (l) => lines.push(l) });
    log.info('dropped');
    log.warn('kept', { name: 'p' });
    log.with({ namespace: 'ns' }).error('also kept');
    expect(lines.map((l) => JSON.parse(l)['@message'])).to.deep.equal(['kept', 'also kept']);
    expect(JSON.parse(lines[1]!).namespace).to.equal('ns');
    expect(levelFromVelero('fatal')).to.equal('error');
    expect(levelFromVelero('nonsense')).to.equal('info');
  });
});
