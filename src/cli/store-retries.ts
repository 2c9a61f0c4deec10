/**
 * The store retries of a command, on stderr (stdout carries --json): one reporter for the process,
 * so that its rate limit and totals cover every store the command opens (store-flags.ts, a restore
 * plan's). Imports only the reporter: cli/main.ts ends it after every command.
 */
import { RetryReporter } from '../store/retry-report.js';

export const storeRetries = new RetryReporter((line) => process.stderr.write(`${line}\n`));
