/** Runs the Go Velero host harness (test/velero-host) against a plugin executable. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paths } from './components.js';

export interface HostCheck {
  name: string;
  plugin?: string;
  ok: boolean;
  message: string;
}

export interface HostReport {
  ok: boolean;
  checks: HostCheck[];
  plugins: Array<{ name: string; kind: string; command: string; exercised: boolean }>;
}

export interface HostRun {
  status: number | null;
  report: HostReport;
  output: string;
}

/** `hostFlags` go before `--`; `pluginArgv` after the plugin path (Velero's server flags). */
export function runVeleroHost(plugin: string, hostFlags: string[] = [], pluginArgv: string[] = [], options: SpawnSyncOptions = {}): HostRun {
  const reportFile = join(mkdtempSync(join(tmpdir(), 'velero-host-')), 'report.json');
  const res = spawnSync(paths.veleroHost, ['-report', reportFile, ...hostFlags, '--', plugin, ...pluginArgv], {
    encoding: 'utf8',
    timeout: 180_000,
    ...options,
  });
  let report: HostReport;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as HostReport;
  } catch {
    report = { ok: false, checks: [], plugins: [] };
  }
  return { status: res.status, report, output: `${String(res.stdout ?? '')}${String(res.stderr ?? '')}` };
}

export function failedChecks(report: HostReport): string[] {
  return report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`);
}
