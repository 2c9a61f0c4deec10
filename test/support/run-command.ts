/**
 * Runs a command asynchronously and collects its output. Never spawnSync in tests that run moto:
 * moto is our child and logs into a pipe, and a blocking spawnSync would stall it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line, parsed (a command's --json summary). */
  // `any`: each test reads its own fields of the summary.
  json: () => any;
}

export async function runCommand(bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout, stderr, json: () => JSON.parse(stdout.trim().split('\n').at(-1)!) };
}
