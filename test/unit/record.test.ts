import { expect } from 'chai';
import { dataSubdirOf, readRecord, readRecordWhere, RECORD_ANNOTATION, recordedWorkloadFolder } from '../../src/actions/record.js';

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

  it('refuses a record whose data directory would leave the volume', () => {
    const record = { format: 'velero-plugin-victoria/record/v1', bucket: 'b', prefix: 'p/plugins/victoria/ns/w', name: 'n' };
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
