/**
 * A GetObject as the SDK would send it, signed, without sending it: for the restore's direct
 * reads (direct-get.ts), which send the request themselves to read the body into reused buffers.
 * Header signing rather than a presigned URL: the SDK's endpoint rules, addressing style and
 * credentials apply unchanged.
 */
import type { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** SigV4's URI encoding (RFC 3986 unreserved characters stay). */
function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The request `command` would send, built and signed by the SDK (endpoint rules, addressing
 * style, credentials, SigV4), without sending it: a middleware after the signer returns an empty
 * output instead of passing the request on.
 */
export async function signedRequest(client: S3Client, command: GetObjectCommand): Promise<{ url: string; headers: Record<string, string> }> {
  let signed: { protocol: string; hostname: string; port?: number; path: string; query: Record<string, string | string[] | null>; headers: Record<string, string> } | undefined;
  command.middlewareStack.addRelativeTo(
    () => async (args: { request: unknown }) => {
      signed = args.request as typeof signed;
      return { response: {}, output: { $metadata: {} } };
    },
    { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'victoriaCaptureSignedRequest' },
  );
  await client.send(command);
  if (!signed) throw new Error('the SDK did not sign the request');
  const query = Object.entries(signed.query)
    .flatMap(([k, v]) => (v === null ? [escapeUri(k)] : (Array.isArray(v) ? v : [v]).map((x) => `${escapeUri(k)}=${escapeUri(x)}`)))
    .join('&');
  const port = signed.port ? `:${signed.port}` : '';
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { url: `${signed.protocol}//${signed.hostname}${port}${signed.path}${query ? `?${query}` : ''}`, headers };
}
