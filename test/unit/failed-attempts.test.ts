import { expect } from 'chai';
import { removeFinishedAttempts } from '../../src/actions/failed-attempts.js';
import { MemoryStore } from '../support/memory-store.js';

describe('failed pod backups: removed once Velero is done with them', () => {
  const attempt = (name: string) => ({ name, startedAt: '2026-11-23T00:00:00.000Z', journaled: true });

  it('removes the folders whose velero-backup.json is in the location, leaves the others, and reports a refused removal without throwing', async () => {
    const store = new MemoryStore();
    const velero = new MemoryStore();
    for (const name of ['done', 'running', 'refused']) {
      store.objects.set(`${name}/victoria_in_progress.ignore`, Buffer.from('{}'));
      store.objects.set(`${name}/data/x/0000000000000000_0000000000000003_0000000000000003`, Buffer.from('abc'));
    }
    store.objects.set('kept/victoria_complete.ignore', Buffer.from('{}'));
    velero.objects.set('done/velero-backup.json', Buffer.from('{}'));
    velero.objects.set('refused/velero-backup.json', Buffer.from('{}'));
    const deleteAll = store.delete.bind(store);
    store.delete = async (keys) => {
      if (keys.some((k) => k.startsWith('refused/'))) throw new Error('AccessDenied');
      return deleteAll(keys);
    };

    const result = await removeFinishedAttempts(store, velero, ['done', 'running', 'refused'].map(attempt));
    expect(result.removed).to.deep.equal([{ name: 'done', objects: 2, bytes: 5 }]);
    expect(result.unfinished).to.deep.equal(['running']);
    expect(result.failed).to.deep.equal([{ name: 'refused', error: 'AccessDenied' }]);
    expect([...store.objects.keys()].filter((k) => k.startsWith('done/'))).to.deep.equal([]);
    expect([...store.objects.keys()].filter((k) => k.startsWith('running/'))).to.have.length(2);
    expect(store.objects.has('kept/victoria_complete.ignore'), 'only the attempts named are touched').to.equal(true);
  });
});
