import { expect } from 'chai';
import { dataSubdirOf, readRecord, readRecordWhere, RECORD_ANNOTATION, recordedWorkloadFolder } from '../../src/actions/record.js';

/** A record as the backup action writes it. */
const RECORD = {
  format: 'velero-plugin-victoria/record/v1',
  storageLocation: 'default',
  bucket: 'b',
  prefix: 'p/plugins/victoria/ns/w',
  name: 'n',
  kind: 'metrics',
  workload: 'StatefulSet/w',
  files: 12,
  bytes: 3456,
};

describe('backup record', () => {
  it('records where below the data volume\'s mount the companion found the data', () => {
    const cases: Array<[string | undefined, string | undefined]> = [
      [undefined, undefined], // an older companion reports none
      ['/victoria-data', undefined],
      ['/victoria-data/', undefined],
      ['/victoria-data/vm', 'vm'],
      ['/victoria-data/a/b/', 'a/b'],
      ['/victoria-data/../etc', undefined],
      ['/victoria-database', undefined],
      ['/tmp/vm', undefined], // elsewhere: no mount the restore could find
    ];
    for (const [dataDir, expected] of cases) expect(dataSubdirOf(dataDir, '/victoria-data'), String(dataDir)).to.equal(expected);
  });

  it('reads a record as the backup action writes it', () => {
    expect(readRecord({ [RECORD_ANNOTATION]: JSON.stringify(RECORD) })).to.deep.equal(RECORD);
    expect(readRecord({})).to.equal(undefined);
  });

  it('refuses a record whose data directory would leave the volume', () => {
    const record = RECORD;
    expect(readRecord({ [RECORD_ANNOTATION]: JSON.stringify({ ...record, dataSubdir: 'vm/data' }) })?.dataSubdir).to.equal('vm/data');
    for (const dataSubdir of ['../x', '/abs', 'a//b', '', 'a/./b', 5]) {
      expect(() => readRecord({ [RECORD_ANNOTATION]: JSON.stringify({ ...record, dataSubdir }) }), String(dataSubdir)).to.throw(/which is not a directory below the data volume/);
    }
  });

  it('a record of another format names it and says how to restore anyway', () => {
    const record = { format: 'velero-plugin-victoria/record/v2', bucket: 'b', prefix: 'p/plugins/victoria/ns/w', name: 'n' };
    expect(() => readRecord({ [RECORD_ANNOTATION]: JSON.stringify(record) })).to.throw(
      /is not a backup record this version understands \(format "velero-plugin-victoria\/record\/v2", expected velero-plugin-victoria\/record\/v1 with bucket, prefix and name\): restore with the plugin version that made the backup, or restore its data with velero-plugin-victoria restore/,
    );
    expect(() => readRecord({ [RECORD_ANNOTATION]: '{}' })).to.throw(/\(format "none", expected/);
  });

  it('names every field of a record of its format that is missing or of the wrong type, rather than failing later far from the cause', () => {
    /** The message of reading the record as the backup action writes it, with `change` made and `drop` removed. */
    const read = (change: Record<string, unknown>, drop: string[] = []): string => {
      const record: Record<string, unknown> = { ...RECORD, ...change };
      for (const key of drop) delete record[key];
      try {
        readRecord({ [RECORD_ANNOTATION]: JSON.stringify(record) });
      } catch (err) {
        return (err as Error).message;
      }
      return 'read without an error';
    };
    const broken = (what: string) =>
      `annotation velero-plugin-victoria.io/backup is a broken velero-plugin-victoria/record/v1 backup record (${what}): it is written by the backup action and must not be edited; ` +
      'restore its data with velero-plugin-victoria restore --src (docs/velero-restore.md), which reads the backup from the bucket without the record';
    // Each required string: a number (`record.prefix.split is not a function` before), an object, null, empty, absent.
    for (const key of ['storageLocation', 'bucket', 'prefix', 'name', 'workload']) {
      expect(read({ [key]: 7 }), `${key}: 7`).to.equal(broken(`${key} is 7, not a string`));
      expect(read({ [key]: { a: 1 } }), `${key}: {}`).to.equal(broken(`${key} is {"a":1}, not a string`));
      expect(read({ [key]: null }), `${key}: null`).to.equal(broken(`${key} is null, not a string`));
      expect(read({ [key]: '' }), `${key}: ''`).to.equal(broken(`${key} is empty`));
      // Without storageLocation the restore once failed as "cannot reach the Kubernetes API server".
      expect(read({}, [key]), `no ${key}`).to.equal(broken(`${key} is missing`));
    }
    expect(read({ kind: 'traces' })).to.equal(broken('kind is "traces", not "metrics" or "logs"'));
    expect(read({ kind: ['metrics'] })).to.equal(broken('kind is ["metrics"], not "metrics" or "logs"'));
    expect(read({}, ['kind'])).to.equal(broken('kind is missing'));
    for (const key of ['files', 'bytes']) {
      for (const bad of ['12', -1, 1.5, 2 ** 53, null, true]) {
        expect(read({ [key]: bad }), `${key}: ${JSON.stringify(bad)}`).to.equal(broken(`${key} is ${JSON.stringify(bad)}, not a whole number of 0 or more`));
      }
      expect(read({}, [key])).to.equal(broken(`${key} is missing`));
    }
    expect(read({ files: 0, bytes: 0, kind: 'logs' })).to.equal('read without an error');
    // Everything wrong at once, in one message: one look at the annotation finds all of it.
    expect(read({ prefix: 7, kind: 'x' }, ['storageLocation'])).to.equal(broken('storageLocation is missing; prefix is 7, not a string; kind is "x", not "metrics" or "logs"'));
    // A long value is cut: the message stays readable.
    expect(read({ bucket: { x: 'y'.repeat(1000) } })).to.equal(broken(`bucket is {"x":"${'y'.repeat(74)}…, not a string`));
  });

  it('a record that is not an object at all is not one of this format', () => {
    for (const raw of ['null', '7', '"velero-plugin-victoria/record/v1"', '[]', `[${JSON.stringify(RECORD)}]`]) {
      expect(() => readRecord({ [RECORD_ANNOTATION]: raw }), raw).to.throw(/is not a backup record this version understands \(format "none"/);
    }
  });

  it('the delete action reads where the data went from a record of any format: Velero deletes the backup whatever it answers', () => {
    const record = { format: 'velero-plugin-victoria/record/v2', bucket: 'b', prefix: 'p/plugins/victoria/ns/w', name: 'n', addedLater: { x: 1 } };
    const where = readRecordWhere({ [RECORD_ANNOTATION]: JSON.stringify(record) });
    expect(where).to.deep.equal({ prefix: 'p/plugins/victoria/ns/w', bucket: 'b' });
    expect(recordedWorkloadFolder(where!)).to.equal('ns/w');
    expect(readRecordWhere({})).to.equal(undefined);
    expect(() => readRecordWhere({ [RECORD_ANNOTATION]: '{"format":"x"}' })).to.throw(/has no prefix; it is written by the backup action and must not be edited/);
    expect(() => readRecordWhere({ [RECORD_ANNOTATION]: 'null' })).to.throw(/has no prefix/);
    expect(() => readRecordWhere({ [RECORD_ANNOTATION]: '{' })).to.throw(/is not JSON/);
  });
});
