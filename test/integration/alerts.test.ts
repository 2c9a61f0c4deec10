/**
 * schedules/alerts.yaml through VictoriaMetrics' own rule unit tester (vmalert-tool 1.145, which runs
 * the rules on an in-process VictoriaMetrics over the series test/alerts/ writes): each alert fires
 * when it should, stays quiet when it should, with the labels and texts an operator sees. And the
 * rules agree with the manifests they watch: a threshold for every Schedule tier, the drill's name,
 * and a `for` longer than the drill Job may run.
 */
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paths, requireComponents, ROOT } from '../support/components.js';

const RULES = join(ROOT, 'schedules', 'alerts.yaml');
const UNIT_TESTS = join(ROOT, 'test', 'alerts', 'victoria-backups.test.yaml');

interface Rule { alert: string; expr: string; for?: string }
interface Manifest { kind?: string; metadata?: { name?: string }; spec?: { jobTemplate?: { spec?: { activeDeadlineSeconds?: number } } } }

function unittest(file: string): { status: number | null; output: string } {
  const r = spawnSync(paths.vmalertTool145, ['unittest', '--files', file], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const rules = (): Rule[] => (loadAll(readFileSync(RULES, 'utf8'))[0] as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const rule = (name: string): Rule => rules().find((r) => r.alert === name)!;

function manifests(): Manifest[] {
  const dir = join(ROOT, 'schedules');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'alerts.yaml')
    .flatMap((f) => loadAll(readFileSync(join(dir, f), 'utf8')) as Manifest[])
    .filter((m) => m && typeof m === 'object');
}

/** A Go duration such as 65m or 1h5m, in seconds. */
function seconds(duration: string): number {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600 };
  return [...duration.matchAll(/(\d+)([smh])/g)].reduce((sum, [, n, u]) => sum + Number(n) * units[u!]!, 0);
}

describe('alerts: schedules/alerts.yaml (vmalert-tool unittest)', function () {
  let work: string;
  before(function () {
    requireComponents(this, paths.vmalertTool145);
    work = mkdtempSync(join(tmpdir(), 'alerts-'));
  });
  after(() => work && rmSync(work, { recursive: true, force: true }));

  it('every alert fires, and stays quiet, as test/alerts/victoria-backups.test.yaml says', () => {
    const r = unittest(UNIT_TESTS);
    expect(r.output).to.contain('SUCCESS');
    expect(r.status, r.output).to.equal(0);
  });

  it('the unit tests catch a wrong rule (a daily threshold of two days)', () => {
    // The same unit tests against a copy of the rules whose daily tier waits 48 h instead of 26 h.
    mkdirSync(join(work, 'schedules'));
    mkdirSync(join(work, 'test', 'alerts'), { recursive: true });
    const text = readFileSync(RULES, 'utf8');
    expect(text).to.contain('schedule="victoria-daily"} > 26 * 3600');
    writeFileSync(join(work, 'schedules', 'alerts.yaml'), text.replace('schedule="victoria-daily"} > 26 * 3600', 'schedule="victoria-daily"} > 48 * 3600'));
    cpSync(UNIT_TESTS, join(work, 'test', 'alerts', 'victoria-backups.test.yaml'));
    const r = unittest(join(work, 'test', 'alerts', 'victoria-backups.test.yaml'));
    expect(r.status, r.output).to.not.equal(0);
    expect(r.output).to.contain('VictoriaBackupOverdue');
  });

  it('the rules cover every Schedule tier and both CronJobs of schedules/ (drill, prune)', () => {
    const schedules = manifests().filter((m) => m.kind === 'Schedule').map((m) => m.metadata!.name!);
    expect(schedules).to.have.length(4);
    const overdue = rule('VictoriaBackupOverdue').expr;
    for (const name of schedules) {
      expect(name, 'the other rules match schedules by victoria-.+').to.match(/^victoria-.+/);
      expect(overdue, `VictoriaBackupOverdue has a threshold for ${name}`).to.contain(`schedule="${name}"`);
    }
    const cronJobs = manifests().filter((m) => m.kind === 'CronJob');
    expect(cronJobs.map((m) => m.metadata!.name).sort()).to.deep.equal(['victoria-drill', 'victoria-prune']);
    const failedRule: Record<string, string> = { 'victoria-drill': 'VictoriaRestoreDrillFailed', 'victoria-prune': 'VictoriaPruneFailed' };
    for (const job of cronJobs) {
      const failed = rule(failedRule[job.metadata!.name!]!);
      expect(failed.expr).to.contain(`cronjob="${job.metadata!.name}"`);
      // Pending while a Job may still run, so that only a failed or timed-out one fires.
      expect(seconds(failed.for!)).to.be.greaterThan(job.spec!.jobTemplate!.spec!.activeDeadlineSeconds!);
    }
  });
});
