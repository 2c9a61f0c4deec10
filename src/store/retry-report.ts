/**
 * The retries of a store, told to whoever runs it. The stores retry 5xx answers, throttling
 * (SlowDown, 503) and broken connections on their own (s3-retry.ts, s3.ts, plan.ts): a backup that
 * a throttling bucket slowed down looks merely slow unless someone says so. A throttling storm
 * retries thousands of requests, so each reason is said at most once per interval (10 s), its line
 * counting the retries of that reason left unsaid since its last line, and end() gives the totals
 * when any were left unsaid. Lines hold no URL query (a presigned URL's signature) or other secret.
 */
import { scrubUrls } from '../common/redact.js';

/** One retry, as the stores report it (s3-retry.ts RetryEvent, PresignedHttpOptions.onRetry). */
export interface RetryNotice {
  /** The attempt that failed, 1-based. */
  attempt: number;
  maxAttempts: number;
  /** What failed: an S3 error code, a connection error's code, `resume GET: ECONNRESET` … */
  reason: string;
  status?: number;
  /** The pause before the next attempt, when the store knows it. */
  delayMs?: number;
  /** The object, when the store knows it (never a URL). */
  target?: string;
}

/** How often a reason is said at most. */
const INTERVAL_MS = 10_000;

/**
 * What a retry is counted and rate-limited under: its reason, but the HTTP status for an answer
 * without an error code (a HEAD's has no body, which the SDK names `Unknown`), which would otherwise
 * put a 500 and a 503 under one name.
 */
function reasonOf(notice: RetryNotice): string {
  const { reason, status } = notice;
  return status !== undefined && (reason === 'Unknown' || reason === String(status) || reason === `HTTP ${status}`) ? `HTTP ${status}` : reason;
}

/** `80 ms`, `1.2 s`. */
function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

interface ReasonCount {
  total: number;
  /** Since this reason's last line. */
  unsaid: number;
  saidAt: number;
}

export class RetryReporter {
  private readonly reasons = new Map<string, ReasonCount>();
  private readonly now: () => number;

  /** `say` gets each line (without a newline); `now` is for tests. */
  constructor(
    private readonly say: (line: string) => void,
    options: { now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** A store's onRetry (bound: pass it as it is). */
  readonly onRetry = (notice: RetryNotice): void => {
    const now = this.now();
    const reason = reasonOf(notice);
    const count = this.reasons.get(reason) ?? { total: 0, unsaid: 0, saidAt: -Infinity };
    this.reasons.set(reason, count);
    count.total++;
    if (now - count.saidAt < INTERVAL_MS) {
      count.unsaid++;
      return;
    }
    const unsaid = count.unsaid;
    count.unsaid = 0;
    count.saidAt = now;
    const what = notice.status === undefined || reason === `HTTP ${notice.status}` ? reason : `${reason}, HTTP ${notice.status}`;
    const next = notice.delayMs === undefined ? '' : notice.delayMs === 0 ? ', next attempt at once' : `, next attempt in ${duration(notice.delayMs)}`;
    const more = unsaid > 0 ? `; ${unsaid} more retries for this reason since its last line` : '';
    this.say(scrubUrls(`S3 retry: ${notice.target ? `${notice.target}: ` : ''}attempt ${notice.attempt} of ${notice.maxAttempts} failed (${what})${next}${more}`));
  };

  /** The retries so far, by reason most frequent first: `153 (SlowDown: 140, ECONNRESET: 13)`; undefined if none. */
  summary(): string | undefined {
    if (this.reasons.size === 0) return undefined;
    const byCount = [...this.reasons].sort(([, a], [, b]) => b.total - a.total);
    const total = byCount.reduce((n, [, c]) => n + c.total, 0);
    return scrubUrls(`${total} (${byCount.map(([reason, c]) => `${reason}: ${c.total}`).join(', ')})`);
  }

  /** One line with the totals when some retries were left unsaid: the lines alone would undercount them. */
  end(): void {
    let unsaid = 0;
    for (const count of this.reasons.values()) {
      unsaid += count.unsaid;
      count.unsaid = 0;
    }
    if (unsaid > 0) this.say(`S3 retries in all: ${this.summary()}; ${unsaid} of them not shown above`);
  }
}
