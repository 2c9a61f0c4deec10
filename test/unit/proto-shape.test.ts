/**
 * proto/ against Velero's own protos. The Go host of the integration tests compiles proto/ itself,
 * so it would follow any drift of these files: here they are compared with a shape taken from
 * Velero's pkg/plugin/proto (test/fixtures/velero-proto-shape.json says which commit).
 */
import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { protoShape } from '../support/proto-shape.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VELERO_FILES = ['Shared.proto', 'PluginLister.proto', 'DeleteItemAction.proto', 'backupitemaction/v2/BackupItemAction.proto', 'restoreitemaction/v2/RestoreItemAction.proto'];

describe('wire contract (proto/)', () => {
  it("declares Velero's messages, field numbers, names and types, and service methods exactly", () => {
    const golden = JSON.parse(readFileSync(resolve(ROOT, 'test/fixtures/velero-proto-shape.json'), 'utf8')) as { shape: Record<string, unknown> };
    expect(protoShape(resolve(ROOT, 'proto'), VELERO_FILES)).to.deep.equal(golden.shape);
  });

  it('the comparison sees a renumbered field and a changed method (in a copy of proto/)', () => {
    const golden = JSON.parse(readFileSync(resolve(ROOT, 'test/fixtures/velero-proto-shape.json'), 'utf8')) as { shape: Record<string, unknown> };
    const copy = mkdtempSync(join(tmpdir(), 'vpv-proto-'));
    try {
      cpSync(resolve(ROOT, 'proto'), copy, { recursive: true });
      const shared = join(copy, 'Shared.proto');
      writeFileSync(shared, readFileSync(shared, 'utf8').replace(/string selector = 5;/, 'string selector = 6;'));
      const bia = join(copy, 'backupitemaction/v2/BackupItemAction.proto');
      writeFileSync(bia, readFileSync(bia, 'utf8').replace(/rpc Progress\(BackupItemActionProgressRequest\)/, 'rpc Progress(stream BackupItemActionProgressRequest)'));
      const changed = protoShape(copy, VELERO_FILES);
      expect(changed['message generated.ResourceSelector']).to.deep.include({ 6: 'string selector' }).and.not.have.property('5');
      expect((changed['service v2.BackupItemAction'] as Record<string, string>).Progress).to.match(/^stream /);
      expect(changed).not.to.deep.equal(golden.shape);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
