import { expect } from 'chai';
import { dataSubdirOf, readRecord, RECORD_ANNOTATION } from '../../src/actions/record.js';

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
});
