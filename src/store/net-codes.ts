/**
 * Node and undici error codes of network failures, in one place so that every store classifies
 * them alike: which failures a retry may cure, which mean the endpoint cannot be reached, and which
 * are a certificate the client does not trust.
 */

/** The connection broke or stalled mid-request: another attempt may well succeed. */
export const BROKEN_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'EPROTO', 'ENETDOWN', 'EHOSTDOWN',
  'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** No connection could be made: a wrong endpoint, DNS or the network (ENOTFOUND is final; the others may pass). */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** TLS verification failed: the server's certificate is not trusted (a missing CA bundle) or not valid for it. */
export const TLS_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
]);

/**
 * A read that broke off mid-stream (its error or the error's cause is a broken connection, or the
 * client's own timeout): the rest may be asked for again from where it stopped (resume.ts).
 */
export function isBrokenRead(err: unknown): boolean {
  const e = err as { code?: string; name?: string; cause?: { code?: string } } | undefined;
  return BROKEN_CONNECTION_CODES.has(e?.code ?? '') || BROKEN_CONNECTION_CODES.has(e?.cause?.code ?? '') || e?.name === 'TimeoutError';
}

/** A failure another attempt may cure: a broken connection, or an unreachable endpoint other than an unknown host name. */
export function isTransientNetworkCode(code: string | undefined): boolean {
  if (code === undefined) return false;
  return BROKEN_CONNECTION_CODES.has(code) || (UNREACHABLE_CODES.has(code) && code !== 'ENOTFOUND');
}
