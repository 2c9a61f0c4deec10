import { expect } from 'chai';
import { USAGE } from '../../src/cli/main.js';
import { BACKUP_USAGE } from '../../src/cli/commands/backup.js';
import { RESTORE_USAGE } from '../../src/cli/commands/restore.js';
import { LIST_USAGE } from '../../src/cli/commands/list.js';
import { VERIFY_USAGE } from '../../src/cli/commands/verify.js';
import { DRILL_USAGE } from '../../src/cli/commands/drill.js';
import { PRUNE_USAGE } from '../../src/cli/commands/prune.js';
import { DEMO_USAGE } from '../../src/cli/commands/demo.js';

/** The flags of a command's synopsis: its usage text up to the first blank line. */
const synopsisFlags = (usage: string): string[] => [...new Set(usage.split('\n\n')[0]!.match(/--[a-z0-9-]+/g) ?? [])];

describe('the top-level help', () => {
  it('names every flag of every command\'s own synopsis', () => {
    for (const usage of [BACKUP_USAGE, RESTORE_USAGE, LIST_USAGE, VERIFY_USAGE, DRILL_USAGE, PRUNE_USAGE, DEMO_USAGE]) {
      const command = /^velero-plugin-victoria (\w+)/.exec(usage)![1];
      for (const flag of synopsisFlags(usage)) expect(USAGE, `${command} ${flag}`).to.contain(flag);
    }
  });
});
