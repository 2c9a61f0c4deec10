/**
 * The one error type the stores throw. `code` says what kind of failure it is, so that callers can
 * branch on it (a missing object is not an outage); the message names the operation and the object
 * and, where it can, what to check. Messages never contain secrets.
 */
export type StoreErrorCode =
  /** The object (or bucket) does not exist. */
  | 'NotFound'
  /** A key, prefix or location that the stores refuse (escapes the root, empty, reserved). */
  | 'InvalidKey'
  /** A byte range outside the object. */
  | 'InvalidRange'
  /** The body did not have the announced size, or the object has another size than expected. */
  | 'SizeMismatch'
  /** The object changed while it was being read or copied. */
  | 'Changed'
  /** Wrong or missing credentials: wrong secret, unknown access key id, expired token. */
  | 'Credentials'
  /** The credentials are valid but not allowed to do this. */
  | 'AccessDenied'
  /** A configuration problem: region, endpoint, TLS, unsupported option. */
  | 'Config'
  /** Anything else, after the retries were spent. */
  | 'Failed';

export interface StoreErrorDetails {
  /** What was being done: 'put', 'get', 'copy', 'list', 'head', 'delete', 'open'. */
  operation: string;
  /** The object or location, as `s3://bucket/key` or `file:///path`. */
  target?: string;
  /** The backend's own error code (`SignatureDoesNotMatch`, `ENOSPC` …). */
  backendCode?: string;
  /** HTTP status, for S3. */
  status?: number;
  cause?: unknown;
}

export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly operation: string;
  readonly target: string | undefined;
  readonly backendCode: string | undefined;
  readonly status: number | undefined;

  constructor(code: StoreErrorCode, message: string, details: StoreErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.operation = details.operation;
    this.target = details.target;
    this.backendCode = details.backendCode;
    this.status = details.status;
  }
}
