/**
 * The errors of the Kubernetes access layer. `code` says what kind of failure it is, so that callers
 * can branch on it (a missing pod is not an outage); the message names the object or the exec, what
 * the API server said, and what to fix. Messages never contain Secret data: only the API server's
 * own Status message, which names objects but never carries their contents.
 */
import { STATUS_CODES } from 'node:http';

export type KubeErrorCode =
  /** No usable configuration: neither in a pod nor a kubeconfig, or the kubeconfig is broken. */
  | 'Config'
  /** The API server could not be reached (connection refused, TLS, DNS). */
  | 'Unreachable'
  /** 401: the API server did not accept our credentials. */
  | 'Unauthorized'
  /** 403: RBAC does not allow it. */
  | 'Forbidden'
  /** 404: the object (or the pod to exec into) does not exist. */
  | 'NotFound'
  /** 409: the object to create exists already. */
  | 'AlreadyExists'
  /** The exec named a container the pod does not have. */
  | 'NoSuchContainer'
  /** The command ran and exited with a non-zero code. */
  | 'NonZeroExit'
  /** The exec stream ended before the exit status arrived. */
  | 'StreamCut'
  /** No bytes arrived for the idle timeout. */
  | 'IdleTimeout'
  /** The whole call took longer than allowed. */
  | 'Timeout'
  /** Cancelled through the AbortSignal. */
  | 'Aborted'
  /** Anything else. */
  | 'Failed';

export class KubeError extends Error {
  override name = 'KubeError';
  readonly code: KubeErrorCode;
  /** HTTP status of the API server's answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: KubeErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
  }
}

/** A failed exec. `exitCode` is set for NonZeroExit; `stderr` holds the tail of what the command wrote there. */
export class ExecError extends KubeError {
  override name = 'ExecError';
  readonly exitCode: number | undefined;
  readonly stderr: string;

  constructor(
    code: KubeErrorCode,
    message: string,
    options: { status?: number; cause?: unknown; exitCode?: number; stderr?: string } = {},
  ) {
    super(code, message, options);
    this.exitCode = options.exitCode;
    this.stderr = options.stderr ?? '';
  }
}

/** The fields of a Kubernetes `Status` that errors use. */
export interface ApiStatus {
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

/** The Status in a response body, or undefined when the body is not one (a proxy's HTML page, empty). */
export function parseStatus(body: unknown): ApiStatus | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const status = value as ApiStatus & { kind?: string };
  return status.kind === 'Status' || typeof status.status === 'string' ? status : undefined;
}

/** HTTP status code to the error code callers branch on. */
export function codeForStatus(httpStatus: number): KubeErrorCode {
  switch (httpStatus) {
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 409:
      return 'AlreadyExists';
    default:
      return 'Failed';
  }
}

/** `403 Forbidden: <the API server's message>`, the part of a message that quotes the answer. */
export function describeAnswer(httpStatus: number, status: ApiStatus | undefined): string {
  const reason = status?.reason || STATUS_CODES[httpStatus] || '';
  const message = status?.message ?? '';
  return [`${httpStatus}${reason ? ` ${reason}` : ''}`, message].filter(Boolean).join(': ');
}

/** The socket-level reason of a failed connection; fetch hides it in `cause` (ECONNREFUSED, a certificate error). */
export function socketReason(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as NodeJS.ErrnoException).code;
  return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
}

export const UNAUTHORIZED_HINT =
  'the API server did not accept our credentials: check the service account token (in a pod) or the user of the kubeconfig';
