/** Running CLI code in-process with what it writes to stdout and stderr captured instead of printed. */

export interface Captured<T> {
  /** What `run` returned, unless it threw. */
  value?: T;
  /** What `run` threw. */
  error?: Error;
  stdout: string;
  stderr: string;
  /** Both, in the order they were written. */
  output: string;
}

/** Runs `run` with process.stdout and process.stderr captured, restoring them however it ends. */
export async function captureOutput<T>(run: () => Promise<T>): Promise<Captured<T>> {
  const captured: Captured<T> = { stdout: '', stderr: '', output: '' };
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string) => ((captured.stdout += c), (captured.output += c), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => ((captured.stderr += c), (captured.output += c), true)) as typeof process.stderr.write;
  try {
    captured.value = await run();
  } catch (error) {
    captured.error = error as Error;
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
  return captured;
}
