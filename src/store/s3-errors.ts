/**
 * S3 and network failures as StoreErrors that say what to do: wrong secret or unknown key id (with
 * the access key id, never the secret), the IAM action an AccessDenied needed, a wrong region, a
 * skewed clock, an untrusted certificate, an unreachable endpoint.
 */
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { StoreError, type StoreErrorCode } from './errors.js';
import type { S3StoreOptions, WebPageError } from './s3-client.js';
import { TLS_CODES, UNREACHABLE_CODES } from './net-codes.js';
import { errorReason } from './s3-retry.js';

/** What a message may name: the store's options and, for the access key id, its client. */
export interface S3ErrorScope {
  client: S3Client;
  options: S3StoreOptions;
}

/** IAM action a failed operation needed, for AccessDenied hints. */
const IAM_ACTION: Record<string, string> = {
  put: 's3:PutObject',
  get: 's3:GetObject',
  head: 's3:GetObject',
  list: 's3:ListBucket',
  listDirectories: 's3:ListBucket',
  delete: 's3:DeleteObject',
  copy: 's3:GetObject on the source and s3:PutObject',
};

/** The endpoint as messages name it. */
export function endpointName(options: S3StoreOptions): string {
  return options.endpoint ?? 'AWS S3';
}

/** "access key id AKIA…" (never the secret), or where credentials were looked for. */
async function whoAmI({ client, options }: S3ErrorScope): Promise<string> {
  let id: string | undefined;
  try {
    id = (await client.config.credentials()).accessKeyId;
  } catch {
    id = undefined;
  }
  const from = options.credentials
    ? ''
    : options.credentialsFile
      ? ` (from ${options.credentialsSource ?? options.credentialsFile}, profile ${options.profile || 'default'})`
      : options.profile
        ? ` (profile ${options.profile})`
        : '';
  return id ? `access key id ${id}${from}` : `the configured credentials${from}`;
}

/**
 * What is wrong with a shared-credentials file the SDK found nothing usable in, in words: missing,
 * unreadable, without the profile, or the profile without keys (a Velero credentials file is INI:
 * `[default]`, then `aws_access_key_id = …` and `aws_secret_access_key = …`). Undefined when it
 * looks right, or its trouble is not one of these. Names profiles, never values. The files are
 * read as the SDK reads them, with its own parser: `configFile` as the config file (a location's
 * file is both), or, when undefined, the SDK's default one, where a profile may be defined instead.
 */
async function credentialsFileProblem(file: string, profile: string, configFile: string | undefined): Promise<string | undefined> {
  try {
    await access(file, fsConstants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
  }
  const { credentialsFile: profiles, configFile: config } = await loadSharedConfigFiles({ filepath: file, ...(configFile ? { configFilepath: configFile } : {}), ignoreCache: true });
  const example = 'as in "[default]", then "aws_access_key_id = …" and "aws_secret_access_key = …" lines';
  const found = profiles[profile];
  if (!found && config[profile]) return undefined;
  if (Object.keys(profiles).length === 0) return `has no [profile] section (${example})`;
  if (!found) return `has no profile [${profile}] (it has ${Object.keys(profiles).map((p) => `[${p}]`).join(', ')})`;
  // A role to assume, a process or SSO give credentials without keys: their trouble is the SDK's to tell.
  const otherwise = ['role_arn', 'credential_process', 'sso_session', 'sso_start_url', 'web_identity_token_file', 'credential_source'].some((k) => k in found);
  if (!otherwise && (!('aws_access_key_id' in found) || !('aws_secret_access_key' in found))) return `has profile [${profile}] without aws_access_key_id and aws_secret_access_key (${example})`;
  return undefined;
}

/** `err` as a StoreError about `operation` on `target` (an s3:// URL); StoreErrors pass unchanged. */
export async function translateS3Error(err: unknown, operation: string, target: string, scope: S3ErrorScope): Promise<StoreError> {
  if (err instanceof StoreError) return err;
  const { reason, status } = errorReason(err);
  const { client, options } = scope;
  const e = err as { message?: string; code?: string; $metadata?: { attempts?: number } };
  const attempts = e?.$metadata?.attempts;
  const after = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  const details = { operation, target, backendCode: reason, ...(status !== undefined ? { status } : {}), cause: err };
  const make = (code: StoreErrorCode, text: string) => new StoreError(code, `${operation} ${target}: ${text}`, details);
  const code = e?.code ?? '';
  switch (reason) {
    case 'SignatureDoesNotMatch':
      return make('Credentials', `the secret access key for ${await whoAmI(scope)} is wrong (SignatureDoesNotMatch)`);
    case 'InvalidAccessKeyId':
      return make('Credentials', `${await whoAmI(scope)} is not known to ${endpointName(options)} (InvalidAccessKeyId): check the access key id, and that the endpoint and credentials belong together`);
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
      return make('Credentials', `the session token of ${await whoAmI(scope)} has expired (${reason})`);
    case 'InvalidToken':
      return make('Credentials', `the session token of ${await whoAmI(scope)} is invalid (InvalidToken)`);
    case 'CredentialsProviderError': {
      const file = options.credentialsFile ?? process.env.AWS_SHARED_CREDENTIALS_FILE;
      const named = options.credentialsSource ?? (options.credentialsFile ? options.credentialsFile : `AWS_SHARED_CREDENTIALS_FILE ${file}`);
      // A location's file is the only source (its config file too); on the SDK's default chain a profile may be in the config file.
      const problem = file ? await credentialsFileProblem(file, options.profile || process.env.AWS_PROFILE || 'default', options.credentialsFile) : undefined;
      if (problem) return make('Credentials', `no usable S3 credentials: ${named} ${problem} (${e?.message ?? reason})`);
      return make(
        'Credentials',
        `no usable S3 credentials${options.credentialsFile ? ` in ${named} (profile ${options.profile || 'default'})` : options.profile ? ` for profile ${options.profile} (is it in the AWS shared credentials or config file?)` : ''}: ${e?.message ?? reason}`,
      );
    }
    case 'AccessDenied':
    case 'AllAccessDisabled':
    case 'Forbidden':
      return make(
        'AccessDenied',
        `access denied (${reason}${status ? `, HTTP ${status}` : ''}): check that the IAM or bucket policy lets ${await whoAmI(scope)} use ${IAM_ACTION[operation] ?? 's3:*'}${options.tagging && (operation === 'put' || operation === 'copy') ? ' and s3:PutObjectTagging (tagging is set)' : ''} on arn:aws:s3:::${options.bucket}/${options.prefix}/*` +
          // Looking for an object that is not there (a marker) is a 403 too when ListBucket is not granted.
          (operation === 'head' ? `, and s3:ListBucket on arn:aws:s3:::${options.bucket}: without it S3 answers 403, not 404, for an object that does not exist` : ''),
      );
    case 'NoSuchBucket':
      return make('NotFound', `bucket ${options.bucket} does not exist on ${endpointName(options)} (NoSuchBucket)`);
    case 'NoSuchKey':
    case 'NotFound':
      return make('NotFound', `the object does not exist (${reason})`);
    case 'InvalidRange':
      return make('InvalidRange', `the byte range is not satisfiable (InvalidRange)`);
    case 'PreconditionFailed':
      return make('Changed', `the object was replaced while it was being read or copied (PreconditionFailed)`);
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return make('Config', `bucket ${options.bucket} is in another region than ${await client.config.region().catch(() => '?')} (${reason}): set the region`);
    case 'AbortError': {
      // The store's signal (withSignal) ended the request: its reason is the cause.
      const cause = (err as { cause?: unknown }).cause;
      return make('Failed', `stopped: ${cause instanceof Error ? cause.message : 'the request was cancelled'}`);
    }
    case 'WebPage':
      return make('Config', `${endpointName(options)} answered with a web page (Content-Type ${(err as WebPageError).contentType}), not S3 (a console or a proxy, not the S3 API?): check the endpoint (s3Url)`);
    case 'RequestTimeTooSkewed':
      return make('Config', `this machine's clock differs from the server's by more than 15 minutes (RequestTimeTooSkewed): fix the clock`);
    case 'InvalidObjectState':
      return make('Failed', `the object is in an archive storage class and must be restored in S3 before it can be read (InvalidObjectState)`);
    // A bucket with S3 Object Lock and a default retention takes an upload only with Content-MD5 or a
    // flexible checksum header (AWS answers InvalidRequest, moto MissingUploadObjectWithObjectLockHeaders).
    case 'MissingUploadObjectWithObjectLockHeaders':
    case 'InvalidRequest':
      if (reason === 'InvalidRequest' && !/object lock/i.test(e?.message ?? '')) break;
      if (operation === 'copy') return make('Failed', `the server wants a checksum header on a server-side copy into bucket ${options.bucket}, which has S3 Object Lock with a default retention (${reason})`);
      return make(
        'Config',
        `bucket ${options.bucket} has S3 Object Lock with a default retention, which takes an upload only with a checksum (${reason}): ` +
          `remove checksumAlgorithm "" from the location (--checksum-algorithm '' on the command line); the default, CRC32, satisfies it`,
      );
    default:
      break;
  }
  if (TLS_CODES.has(code)) {
    return make('Config', `TLS verification of ${endpointName(options)} failed (${code}): give the CA bundle that signed the server's certificate as caCert, or set insecureSkipTLSVerify`);
  }
  if (code === 'ENOTFOUND' && !options.endpoint) {
    // AWS's host name is made of the bucket and the region: a typo in either is what usually fails to resolve.
    const region = await client.config.region().catch(() => undefined);
    return make('Failed', `cannot resolve the address of bucket ${options.bucket} on AWS S3${region ? ` in region ${region}` : ''} (ENOTFOUND)${after}: check the region (region), the bucket name and the network's DNS`);
  }
  if (UNREACHABLE_CODES.has(code)) {
    return make('Failed', `cannot reach ${endpointName(options)} (${code})${after}: check the endpoint (s3Url) and the network`);
  }
  const statusText = status !== undefined ? ` (HTTP ${status})` : '';
  const message = e?.message && e.message !== reason && e.message !== 'UnknownError' ? `: ${e.message}` : '';
  return make('Failed', `failed${after}: ${reason}${statusText}${message}`);
}
