/**
 * Removes secrets from text before it is logged or returned in an error.
 *
 * Presigned URLs carry a signature and the access key id in their query string; anyone who reads
 * `velero backup logs` could replay them until they expire. Authorization headers and
 * `key=value` pairs that look like credentials are masked for the same reason.
 */
const PATTERNS: Array<[RegExp, string]> = [
  // SigV4/SigV2 query-string authentication (presigned URLs).
  [/([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=)[^&\s"']*/gi, '$1REDACTED'],
  // The same URL percent-encoded inside another (a redirect's or a proxy's parameter): up to the next %26.
  [/((?:%3F|%26)(?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)%3D)(?:(?!%26)[^&\s"'])*/gi, '$1REDACTED'],
  // The signature as a header (x-amz-security-token is caught by the token rule below).
  [/(X-Amz-Signature["']?\s*:\s*["']?)[^\s"',}]+/gi, '$1REDACTED'],
  // Authorization headers as they appear in SDK error dumps, and bearer tokens on their own.
  [/(Authorization["']?\s*[:=]\s*["']?)[^"'\r\n]+/gi, '$1REDACTED'],
  [/(\bBearer\s+)[^\s"']+/g, '$1REDACTED'],
  // A password in a URL's user information (scheme://user:password@host).
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']+:)[^/\s@"']*@/gi, '$1REDACTED@'],
  // Credential-looking assignments (secret access keys, auth keys, passwords, tokens); not S3's
  // error code `ExpiredToken: The provided token has expired.`
  [/((?:(?:aws_)?secret[_-]?(?:access[_-]?)?key|authKey|auth_key|password|(?<!Expired)token)["']?\s*[:=]\s*["']?)[^\s"'&,}]+/gi, '$1REDACTED'],
  // A kubeconfig's client key or certificate data (base64 PEM).
  [/((?:client-key-data|client-certificate-data)["']?\s*:\s*["']?)[^\s"'&,}]+/gi, '$1REDACTED'],
  // A PEM private key, whole or cut off.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, '-----BEGIN PRIVATE KEY----- REDACTED'],
];

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Any URL in `text` loses everything after its path (a presigned URL's query is its signature); then redact(). */
export function scrubUrls(text: string): string {
  const noQuery = text.replace(/\b(https?:\/\/[^\s?#"'<>]*)[?#][^\s"'<>]*/gi, '$1?<redacted>');
  return redact(noQuery.replace(/\b(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"'<>]*/gi, '$1REDACTED'));
}
