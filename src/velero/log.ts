/**
 * Velero-safe logging.
 *
 * Velero's go-plugin host parses every stderr line of a plugin. A JSON object line is re-logged
 * through the backup's logger, and two kinds of mistakes take the whole Velero server down
 * (docs/plugin-protocol.md, Logging): a non-string `@message`/`@level`/`@timestamp`,
 * and, during a backup, a non-string `name`/`namespace`/`resource` field. So this logger only ever
 * writes one JSON object per line, with string values only, no `@timestamp`, and lines well under
 * the host's 64 KiB read buffer. `error` is reserved for what should make a backup PartiallyFailed:
 * Velero counts every error line against the backup.
 */
import { redact } from '../common/redact.js';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

const ORDER: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

/** The host reads stderr in 64 KiB chunks; a longer line is split and logged raw. Stay well below. */
export const MAX_LINE_BYTES = 60 * 1024;
const MAX_FIELD_CHARS = 4096;

/** Keys the host interprets itself (or drops); a field must never override them. */
const RESERVED = new Set(['@level', '@message', '@timestamp', '@module', 'level', 'time', 'timestamp']);
/**
 * Fields whose name says they hold a credential are masked whole: redact() recognises secrets by
 * the text around them (`secretAccessKey=…`), which a bare value under such a name does not have.
 */
const SECRET_FIELD = /secret|password|passwd|token|auth.?key|credential|authorization|signature/i;

export interface Logger {
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /** A logger that adds these fields to every line. */
  with(fields: Fields): Logger;
}

/** Map Velero's `--log-level` values (logrus names) onto ours; unknown values keep the default. */
export function levelFromVelero(value: string | undefined, fallback: Level = 'info'): Level {
  switch ((value ?? '').toLowerCase()) {
    case 'trace': return 'trace';
    case 'debug': return 'debug';
    case 'info': return 'info';
    case 'warn': case 'warning': return 'warn';
    case 'error': case 'fatal': case 'panic': return 'error';
    default: return fallback;
  }
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.message;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** Build one stderr line. Exported for tests: this is the whole crash-safety contract. */
export function formatLine(level: Level, message: string, fields: Fields = {}): string {
  const entry: Record<string, string> = { '@level': level, '@message': clip(redact(stringify(message)), MAX_LINE_BYTES / 2) };
  for (const [key, value] of Object.entries(fields)) {
    if (RESERVED.has(key) || value === undefined) continue;
    const text = SECRET_FIELD.test(key) ? 'REDACTED' : redact(stringify(value));
    entry[key] = clip(text, MAX_FIELD_CHARS);
  }
  let line = JSON.stringify(entry);
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
    // Multi-byte text can still exceed the budget: keep level and a shortened message only.
    line = JSON.stringify({ '@level': level, '@message': clip(entry['@message'] ?? '', MAX_LINE_BYTES / 8) });
  }
  return line;
}

export type Sink = (line: string) => void;

const stderrSink: Sink = (line) => {
  process.stderr.write(`${line}\n`);
};

export function createLogger(options: { level?: Level; sink?: Sink; fields?: Fields } = {}): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const sink = options.sink ?? stderrSink;
  const base = options.fields ?? {};
  const emit = (level: Level, message: string, fields?: Fields): void => {
    if (ORDER[level] < threshold) return;
    sink(formatLine(level, message, { ...base, ...fields }));
  };
  return {
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    with: (fields) => createLogger({ level: options.level ?? 'info', sink, fields: { ...base, ...fields } }),
  };
}
