/**
 * Errors of the Victoria clients. Each one names what was called (method and URL, never the auth
 * key), what the server said, and for authentication failures which server flag and which of our
 * options disagree, so the message alone says what to fix.
 */

export type Product = 'VictoriaMetrics' | 'VictoriaLogs';

export class VictoriaError extends Error {
  override readonly name: string = 'VictoriaError';
  constructor(
    message: string,
    /** Request URL without credentials. */
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The server answered with an unexpected HTTP status. */
export class VictoriaHttpError extends VictoriaError {
  override readonly name = 'VictoriaHttpError';
  constructor(
    message: string,
    url: string,
    readonly method: string,
    readonly status: number,
    /** The server's own message (plain text or the JSON `msg`/`error`), secrets removed. */
    readonly serverMessage: string,
    /** Set when the server rejected our credentials: the flag (e.g. `snapshotAuthKey`) or `httpAuth`. */
    readonly authFlag?: string,
  ) {
    super(message, url);
  }
}

/** The server could not be reached or did not answer in time. */
export class VictoriaUnreachableError extends VictoriaError {
  override readonly name = 'VictoriaUnreachableError';
}

/** The server answered 2xx with a body we cannot interpret. */
export class VictoriaResponseError extends VictoriaError {
  override readonly name = 'VictoriaResponseError';
}

/** Several snapshot deletions failed; `errors` holds each one. */
export class VictoriaDeleteError extends VictoriaError {
  override readonly name = 'VictoriaDeleteError';
  constructor(
    message: string,
    url: string,
    readonly errors: readonly Error[],
  ) {
    super(message, url);
  }
}

/**
 * The server cannot delete these snapshots through its API: it has none (VictoriaLogs v1.31–v1.43),
 * or their partition is detached. Retrying would not remove them, so callers leave them, say where
 * they are, and do not retry. `paths` are the snapshots' paths as the server gave them.
 */
export class SnapshotUndeletableError extends VictoriaError {
  override readonly name = 'SnapshotUndeletableError';
  constructor(
    message: string,
    url: string,
    readonly paths: readonly string[],
  ) {
    super(message, url);
  }
}

/** Which of our options carries the value of which server flag, for messages. */
export interface AuthOptionNames {
  /** Option that carries `-snapshotAuthKey` / `-partitionManageAuthKey`. */
  authKeyOption: string;
  /** Option that carries `-forceFlushAuthKey`. */
  forceFlushAuthKeyOption: string;
}

export interface AuthProblem {
  /** The server flag the key is checked against, without the dash; `httpAuth` for basic auth. */
  flag: string;
  hint: string;
}

const AUTH_FLAG = /-(\w*AuthKey)\b/;

/**
 * Recognises an authentication failure and says how to fix it. Shapes:
 * - VictoriaMetrics >= 1.86 and VictoriaLogs: 401, "Expected to receive non-empty authKey when
 *   -snapshotAuthKey is set" or "The provided authKey doesn't match -snapshotAuthKey";
 * - VictoriaMetrics 1.79: **400**, "… invalid authKey "…". It must match the value from
 *   -snapshotAuthKey command line flag";
 * - basic auth (`-httpAuth.*`): 401 with `WWW-Authenticate: Basic`, empty body.
 */
export function detectAuthProblem(
  status: number,
  message: string,
  wwwAuthenticate: string | undefined,
  /** `forceFlush`: the request was a force flush, so an unnamed key failure concerns its key. */
  sent: { authKey: boolean; basicAuth: boolean; forceFlush?: boolean },
  names: AuthOptionNames,
): AuthProblem | undefined {
  const flagMatch = AUTH_FLAG.exec(message);
  const mentionsKey = /authKey/i.test(message) && flagMatch !== null;
  if ((status === 401 || status === 403 || status === 400) && mentionsKey && flagMatch?.[1]) {
    const flag = flagMatch[1];
    const option = /forceFlush/i.test(flag) ? names.forceFlushAuthKeyOption : names.authKeyOption;
    const hint = sent.authKey
      ? `-${flag} does not match: pass the server's -${flag} value with ${option}`
      : `the server requires -${flag}: pass its value with ${option}`;
    return { flag, hint };
  }
  if (status === 401 && wwwAuthenticate !== undefined && /basic/i.test(wwwAuthenticate)) {
    const hint = sent.basicAuth
      ? 'the basic auth credentials do not match the server\'s -httpAuth.username/-httpAuth.password'
      : 'the server requires basic auth (-httpAuth.username/-httpAuth.password): pass credentials';
    return { flag: 'httpAuth', hint };
  }
  if (status === 401 || status === 403) {
    // A proxy in front of the server (vmauth, an ingress) answers without naming a flag.
    return { flag: 'unknown', hint: `authentication failed: check ${sent.forceFlush ? names.forceFlushAuthKeyOption : names.authKeyOption} and basic auth credentials` };
  }
  return undefined;
}

/**
 * Removes credentials from text that came from the server or from us: VictoriaMetrics 1.79 echoes
 * the request URI (with `authKey=`) and the wrong key itself in its error bodies.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text
    .replace(/(authKey=)[^&\s;"']*/gi, '$1<redacted>')
    .replace(/(invalid authKey )"(?:[^"\\]|\\.)*"/gi, '$1"<redacted>"');
  for (const secret of secrets) {
    // Very short keys would mangle ordinary words; the patterns above cover where they appear.
    if (secret.length >= 4) out = out.split(secret).join('<redacted>');
  }
  return out;
}

/** Limits a server message to something that fits in a log line. */
export function clip(text: string, max = 1000): string {
  const t = text.trim();
  return t.length > max ? `${t.slice(0, max)}… (${t.length - max} more characters)` : t;
}
