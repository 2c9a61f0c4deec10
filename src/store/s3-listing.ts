/** The paging of ListObjectsV2, checked: a listing that would end early or never is an error, not a wrong answer. */
import { StoreError } from './errors.js';

/**
 * The continuation token of a ListObjectsV2 page, undefined after the last page. A page marked
 * truncated without a token would end the listing early and silently: a wrong answer, so an error.
 */
export function nextToken(
  page: { IsTruncated?: boolean; NextContinuationToken?: string; Name?: string; KeyCount?: number },
  seen: Set<string>,
  target: string,
  endpoint: string,
): string | undefined {
  // Every ListBucketResult names its bucket and says whether it is truncated. A 200 without them
  // is some other server's answer that is not HTML (those the client refuses itself, s3-client.ts
  // rejectWebPage), such as a JSON status page: the SDK parses it into an empty listing, which
  // would read as "no backups" or "an empty folder".
  if (page.IsTruncated === undefined && page.Name === undefined && page.KeyCount === undefined) {
    throw new StoreError('Config', `list ${target}: ${endpoint} answered 200 without an S3 listing (a web page or a console, not the S3 API?): check the endpoint (s3Url)`, {
      operation: 'list',
      target,
    });
  }
  if (!page.IsTruncated) return undefined;
  if (!page.NextContinuationToken) {
    throw new StoreError('Failed', `list ${target}: the server said the listing is truncated but gave no continuation token`, { operation: 'list', target });
  }
  // A server that hands back a token it gave before would have the listing loop forever.
  if (seen.has(page.NextContinuationToken)) {
    throw new StoreError('Failed', `list ${target}: the server gave a continuation token it had given before, so the listing would never end`, { operation: 'list', target });
  }
  seen.add(page.NextContinuationToken);
  return page.NextContinuationToken;
}
