import { expect } from 'chai';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from '../../src/velero/log.js';
import { textForVelero } from '../../src/velero/errors.js';
import { serve, validatePluginName, type RunningServer } from '../../src/velero/server.js';
import type { BackupItemActionV2, DeleteItemAction, RestoreItemActionV2 } from '../../src/velero/types.js';
import { allActions } from '../../src/actions/index.js';
import { clientFor } from '../support/grpc-clients.js';

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'monitoring', name: 'vm-0', labels: { a: 'b' } } };
const podBytes = Buffer.from(JSON.stringify(pod));
const backup = Buffer.from(JSON.stringify({ metadata: { name: 'b1', namespace: 'velero' }, spec: { storageLocation: 'default' } }));

function fakeActions(): [BackupItemActionV2, RestoreItemActionV2, DeleteItemAction] {
  return [
    {
      kind: 'BackupItemActionV2',
      name: 'example.io/b',
      appliesTo: () => ({ includedResources: ['pods'], selector: 'app=x' }),
      async execute({ item }, ctx) {
        if (item.metadata?.name === 'boom') throw new Error('boom happened; fix the boom');
        // A stderr tail cut inside a character made of two UTF-16 units, and far too long for a trailer.
        if (item.metadata?.name === 'torn') throw new Error(`${'\uDE00'}tail of stderr ${'x'.repeat(100_000)}`);
        if (item.metadata?.name === 'log-me') ctx.log.warn('seen');
        if (item.metadata?.name === 'annotate') return { item: { ...item, metadata: { ...item.metadata, annotations: { done: 'yes' } } } };
        return undefined;
      },
      async progress(id) {
        if (id === 'fail') throw new Error('no such operation');
        if (id === 'failed-op') return { completed: true, err: 'GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef failed' };
        return { completed: true, nCompleted: 5, nTotal: 5, started: new Date(1_700_000_000_123) };
      },
      async cancel() {},
    },
    {
      kind: 'RestoreItemActionV2',
      name: 'example.io/r',
      appliesTo: () => ({ includedResources: ['pods'] }),
      async execute() {
        return { skipRestore: false };
      },
      async progress() {
        return { completed: false };
      },
      async cancel() {},
      async areAdditionalItemsReady(items) {
        return items.length === 0;
      },
    },
    {
      kind: 'DeleteItemAction',
      name: 'example.io/d',
      appliesTo: () => ({ includedResources: ['pods'] }),
      async execute() {},
    },
  ];
}

describe('go-plugin server', () => {
  let server: RunningServer;
  let handshake = '';
  const logLines: string[] = [];
  let shutdownCalled = false;

  before(async () => {
    server = await serve({
      actions: fakeActions(),
      command: '/plugins/velero-plugin-victoria',
      log: createLogger({ level: 'debug', sink: (l) => logLines.push(l) }),
      socketDir: mkdtempSync(join(tmpdir(), 'vpv-')),
      writeHandshake: (line) => (handshake = line),
      onShutdown: () => (shutdownCalled = true),
    });
  });
  after(() => server.stop());

  it('prints the go-plugin handshake line after listening', () => {
    expect(handshake).to.equal(`1|2|unix|${server.socketPath}|grpc|\n`);
    expect(existsSync(server.socketPath)).to.equal(true);
  });

  it('lists plugins in Velero kind order with the relaunch command', async () => {
    const { call, close } = clientFor(server.socketPath, 'PluginLister');
    const res = await call('ListPlugins', {});
    close();
    expect(res.plugins).to.deep.equal([
      { command: '/plugins/velero-plugin-victoria', kind: 'BackupItemActionV2', name: 'example.io/b' },
      { command: '/plugins/velero-plugin-victoria', kind: 'RestoreItemActionV2', name: 'example.io/r' },
      { command: '/plugins/velero-plugin-victoria', kind: 'DeleteItemAction', name: 'example.io/d' },
    ]);
  });

  it('answers AppliesTo with the capitalised ResourceSelector field', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const res = await call('AppliesTo', { plugin: 'example.io/b' });
    close();
    expect(res.ResourceSelector.includedResources).to.deep.equal(['pods']);
    expect(res.ResourceSelector.selector).to.equal('app=x');
  });

  it('returns the input bytes unchanged when the action has nothing to do', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const res = await call('Execute', { plugin: 'example.io/b', item: podBytes, backup });
    close();
    expect(Buffer.compare(res.item, podBytes)).to.equal(0);
    expect(res.operationID).to.equal('');
  });

  it('returns a modified item as JSON', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const item = { ...pod, metadata: { ...pod.metadata, name: 'annotate' } };
    const res = await call('Execute', { plugin: 'example.io/b', item: Buffer.from(JSON.stringify(item)), backup });
    close();
    expect(JSON.parse(res.item.toString()).metadata.annotations).to.deep.equal({ done: 'yes' });
  });

  for (const [label, bytes, pattern] of [
    ['not JSON', Buffer.from('{nope'), /not valid JSON/],
    ['an array', Buffer.from('[]'), /must be a JSON object, got an array/],
    ['an object without kind', Buffer.from('{}'), /has no "kind"/],
    ['empty', Buffer.alloc(0), /is empty/],
  ] as const) {
    it(`rejects an item that is ${label} with a clear error`, async () => {
      const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
      const err = (await call('Execute', { plugin: 'example.io/b', item: bytes, backup }).catch((e) => e)) as ServiceError;
      close();
      expect(err.code).to.equal(status.UNKNOWN);
      expect(err.details).to.match(pattern);
    });
  }

  it('turns an action exception into an error with its message', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const item = { ...pod, metadata: { name: 'boom' } };
    const err = (await call('Execute', { plugin: 'example.io/b', item: Buffer.from(JSON.stringify(item)), backup }).catch((e) => e)) as ServiceError;
    close();
    expect(err.details).to.equal('boom happened; fix the boom');
  });

  it('sends an error with a lone surrogate and 100 KB of text as a well-formed, shortened message (grpc-js would throw, ending the process)', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const item = { ...pod, metadata: { name: 'torn' } };
    const err = (await call('Execute', { plugin: 'example.io/b', item: Buffer.from(JSON.stringify(item)), backup }).catch((e) => e)) as ServiceError;
    close();
    expect(err.code).to.equal(status.UNKNOWN);
    expect(err.details.startsWith('\uFFFDtail of stderr xxx')).to.equal(true);
    expect(err.details).to.match(/… \(83632 more characters\)$/);
    expect(err.details.length).to.be.below(17 * 1024);
  });

  it('redacts a message before cutting it: a secret across the cut does not leave its start behind', () => {
    const text = `${'x'.repeat(16 * 1024 - 20)} http://admin:hunter2hunter2@minio:9000/b failed`;
    const sent = textForVelero(text);
    expect(sent).not.to.contain('hunter');
    expect(sent).to.match(/http:\/\/admin:RED[A-Z]*… \(\d+ more characters\)$/);
  });

  it("logs an item's lines with its resource as Velero names it (pods, deployments.apps)", async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    for (const item of [
      { ...pod, metadata: { namespace: 'monitoring', name: 'log-me' } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { namespace: 'monitoring', name: 'log-me' } },
    ]) {
      await call('Execute', { plugin: 'example.io/b', item: Buffer.from(JSON.stringify(item)), backup });
    }
    close();
    const seen = logLines.map((l) => JSON.parse(l) as Record<string, string>).filter((e) => e['@message'] === 'seen');
    expect(seen.map((e) => [e.resource, e.namespace, e.name])).to.deep.equal([
      ['pods', 'monitoring', 'log-me'],
      ['deployments.apps', 'monitoring', 'log-me'],
    ]);
  });

  it('routes by plugin name and refuses unknown names', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const err = (await call('AppliesTo', { plugin: 'example.io/r' }).catch((e) => e)) as ServiceError;
    close();
    expect(err.code).to.equal(status.NOT_FOUND);
    expect(err.details).to.match(/"example.io\/r" is not served.*example.io\/b/);
  });

  it('always sets progress in Progress replies', async () => {
    const { call, close } = clientFor(server.socketPath, 'BackupItemActionV2');
    const res = await call('Progress', { plugin: 'example.io/b', operationID: 'op1', backup });
    const err = (await call('Progress', { plugin: 'example.io/b', operationID: 'fail', backup }).catch((e) => e)) as ServiceError;
    // Velero shows a progress error in `velero backup describe`: redacted like log lines.
    const failed = await call('Progress', { plugin: 'example.io/b', operationID: 'failed-op', backup });
    close();
    expect(failed.progress.err).to.include('failed').and.not.include('abcdef');
    expect(res.progress).to.include({ completed: true, nCompleted: '5', nTotal: '5' });
    expect(res.progress.started).to.deep.equal({ seconds: '1700000000', nanos: 123_000_000 });
    expect(err.details).to.equal('no such operation');
  });

  it('serves RestoreItemAction v2 and DeleteItemAction', async () => {
    const ria = clientFor(server.socketPath, 'RestoreItemActionV2');
    const res = await ria.call('Execute', { plugin: 'example.io/r', item: podBytes, restore: backup, itemFromBackup: podBytes });
    expect(Buffer.compare(res.item, podBytes)).to.equal(0);
    expect((await ria.call('AreAdditionalItemsReady', { plugin: 'example.io/r', restore: backup, additionalItems: [] })).ready).to.equal(true);
    expect((await ria.call('Progress', { plugin: 'example.io/r', operationID: 'x', restore: backup })).progress.completed).to.equal(false);
    ria.close();
    const dia = clientFor(server.socketPath, 'DeleteItemAction');
    expect(await dia.call('Execute', { plugin: 'example.io/d', item: podBytes, backup })).to.deep.equal({});
    dia.close();
  });

  it('reports SERVING for the plugin health service', async () => {
    const { call, close } = clientFor(server.socketPath, 'Health');
    expect((await call('Check', { service: 'plugin' })).status).to.equal('SERVING');
    close();
  });

  it('answers Shutdown, then stops', async () => {
    const { call, close } = clientFor(server.socketPath, 'GRPCController');
    expect(await call('Shutdown', {})).to.deep.equal({});
    close();
    // Stopping is asynchronous: wait for it (a loaded machine may take longer than a fixed sleep).
    for (const deadline = Date.now() + 5000; Date.now() < deadline && (!shutdownCalled || existsSync(server.socketPath)); ) await new Promise((r) => setTimeout(r, 20));
    expect(shutdownCalled).to.equal(true);
    expect(existsSync(server.socketPath)).to.equal(false);
  });

  it('logs only Velero-safe lines', () => {
    expect(logLines.length).to.be.greaterThan(0);
    for (const line of logLines) {
      const entry = JSON.parse(line);
      for (const value of Object.values(entry)) expect(value).to.be.a('string');
      expect(entry).not.to.have.property('@timestamp');
    }
  });
});

describe('registered actions', () => {
  it('have valid, unique, non-velero.io names and select labelled pods (the workload check: their owners)', () => {
    const actions = allActions();
    expect(new Set(actions.map((a) => a.name)).size).to.equal(actions.length);
    for (const action of actions) {
      expect(validatePluginName(action.name), action.name).to.equal(undefined);
      const resources: Record<string, string[]> = {
        'velero-plugin-victoria.io/workload-check': ['deployments.apps', 'statefulsets.apps', 'daemonsets.apps'],
        'velero-plugin-victoria.io/workload-restore': ['deployments.apps', 'replicasets.apps', 'statefulsets.apps', 'daemonsets.apps'],
      };
      expect(action.appliesTo().includedResources, action.name).to.deep.equal(resources[action.name] ?? ['pods']);
      // The backup side takes any value of the label and refuses a wrong one (no silent skip), and
      // so do the workload templates a drill restores (a wrong one would open the production path);
      // the pod restore and delete act only where a backup can have written data.
      const anyValue = ['velero-plugin-victoria.io/pod-backup', 'velero-plugin-victoria.io/workload-check', 'velero-plugin-victoria.io/workload-restore'].includes(action.name);
      expect(action.appliesTo().selector, action.name).to.equal(anyValue ? 'velero-plugin-victoria.io/kind' : 'velero-plugin-victoria.io/kind in (metrics,logs)');
    }
  });

  it('validates names like Velero', () => {
    expect(validatePluginName('velero.io/pod')).to.match(/reserved/);
    expect(validatePluginName('Example.io/x')).to.match(/DNS-1123/);
    expect(validatePluginName('example.io/x/y')).to.match(/must be/);
    expect(validatePluginName('noslash')).to.match(/must be/);
  });
});
