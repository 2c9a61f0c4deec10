import { expect } from 'chai';
import { removeFinishedAttempts } from '../../src/actions/failed-attempts.js';
import { COMPLETE_KEY, IN_PROGRESS_KEY, MANIFEST_FORMAT } from '../../src/engine/manifest.js';
import { MemoryStore } from '../support/memory-store.js';

describe('failed pod backups: removed once Velero is done with them', () => {
  const startedAt = '2026-11-23T00:00:00.000Z';
  const attempt = (name: string) => ({ name, run: `run-${name}`, startedAt, journaled: true });
  const marker = (run: string) => Buffer.from(JSON.stringify({ format: MANIFEST_FORMAT, kind: 'metrics', startedAt, run }));

  it('removes the folders whose velero-backup.json is in the location, in-progress marker last; leaves the others, and reports a refused removal without throwing', async () => {
    const store = new MemoryStore();
    const velero = new MemoryStore();
    const names = ['done', 'running', 'refused', 'completed', 'rerun'];
    for (const name of names) {
      store.objects.set(`${name}/${IN_PROGRESS_KEY}`, marker(`run-${name}`));
      store.objects.set(`${name}/data/x/0000000000000000_0000000000000003_0000000000000003`, Buffer.from('abc'));
      if (name !== 'running') velero.objects.set(`${name}/velero-backup.json`, Buffer.from('{}'));
    }
    // Since the attempts were found: one completed, one was taken by another run (another Velero sharing the location).
    store.objects.set(`completed/${COMPLETE_KEY}`, Buffer.from('{}'));
    store.objects.set(`rerun/${IN_PROGRESS_KEY}`, marker('run-other'));
    const deleted: string[][] = [];
    const deleteAll = store.delete.bind(store);
    store.delete = async (keys) => {
      if (keys.some((k) => k.startsWith('refused/'))) throw new Error('AccessDenied');
      deleted.push(keys);
      return deleteAll(keys);
    };

    const result = await removeFinishedAttempts(store, velero, names.map(attempt));
    expect(result.removed).to.deep.equal([{ name: 'done', objects: 2, bytes: `abc`.length + marker('run-done').length }]);
    expect(deleted.filter((keys) => keys.length > 0).at(-1), 'the in-progress marker goes last').to.deep.equal([`done/${IN_PROGRESS_KEY}`]);
    expect(result.unfinished).to.deep.equal(['running']);
    expect(result.failed).to.deep.equal([{ name: 'refused', error: 'AccessDenied' }]);
    expect([...store.objects.keys()].filter((k) => k.startsWith('done/'))).to.deep.equal([]);
    expect([...store.objects.keys()].filter((k) => k.startsWith('running/'))).to.have.length(2);
    expect([...store.objects.keys()].filter((k) => k.startsWith('completed/') || k.startsWith('rerun/')), 'no longer failed attempts: left alone').to.have.length(5);
  });
});
