/**
 * moto server 5.2.4 (Debian's python3-moto, extracted by `scripts/test-deps.sh moto`) as the S3 of
 * the integration tests, in **auth mode**: SigV4 signatures are checked, so a wrong secret fails
 * the way it fails on AWS.
 *
 * Auth mode works by counting: the first INITIAL_NO_AUTH_ACTION_COUNT requests are not checked. We
 * spend exactly those on three IAM query-API calls (CreateUser, PutUserPolicy allow-all,
 * CreateAccessKey) sent as plain form POSTs, then create the bucket with the SDK, signed.
 * Readiness polling uses /moto-api/, which does not count.
 *
 * moto routes a request by the service in the Authorization header's credential scope, and
 * unsigned requests default to S3, so the IAM calls carry a placeholder Authorization header
 * naming `iam` (not checked during the unauthenticated window).
 *
 * Quirks (§5.4): in auth mode presigned URLs get 500 (KeyError HTTP_AUTHORIZATION), and so do
 * anonymous requests (so tests of presigned URLs use `auth: false`, where moto_presign_check.py
 * checks them in front of moto); GetObject of a CopyObject'd multipart object fails the SDK's default
 * response-checksum validation, so clients here use responseChecksumValidation WHEN_REQUIRED.
 * Data lives in moto's memory and is lost on stop.
 *
 * moto logs every request; the log goes to a file, not a pipe, so that a test process that blocks
 * its event loop (spawnSync of vmbackup, say) cannot stall moto on a full pipe.
 */
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/victoria/local-server.js';
import { paths } from './components.js';

export interface Moto {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** Milliseconds from spawn to a usable bucket. */
  startMs: number;
  /** Where and as whom to reach moto, as S3Store options take it. */
  s3Options: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  /** An SDK client for the bucket (path style, WHEN_REQUIRED checksums), for checks behind the store's back. */
  client: S3Client;
  /** Every key in the bucket under `prefix`, in key order (all pages). */
  keys(prefix: string): Promise<string[]>;
  /** moto's log (the last 64 KiB). */
  log(): string;
  stop(): Promise<void>;
}

export interface MotoOptions {
  bucket?: string;
  region?: string;
  /**
   * Default true: auth mode, SigV4 checked. false, for presigned URLs (in auth mode moto answers
   * every one with 500): moto's no-auth mode, where header-signed
   * requests are not checked, behind moto_presign_check.py, which checks every presigned URL's
   * signature (botocore's signer, with the credentials returned here), scope and expiry as S3 does.
   */
  auth?: boolean;
  /**
   * With `auth: false`: check presigned URLs in front of moto (default true). The restore-plan
   * benchmark turns it off, so that the Python check's time per request is not counted against
   * the side that uses presigned URLs.
   */
  presignCheck?: boolean;
}


/** The credentials of no-auth mode: moto takes any, the presigned-URL check only these. */
const NO_AUTH_CREDENTIALS = { accessKeyId: 'AKIANOAUTHMOTOTEST00', secretAccessKey: 'no-auth-mode-checks-presigned-urls' };
const PRESIGN_CHECK = join(dirname(fileURLToPath(import.meta.url)), 'moto_presign_check.py');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** One IAM query-API call during moto's unauthenticated window; returns the XML. */
async function iam(endpoint: string, region: string, params: Record<string, string>): Promise<string> {
  const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      // Routing only: moto picks the service from the credential scope; the signature is not checked yet.
      authorization: `AWS4-HMAC-SHA256 Credential=bootstrap/20260101/${region}/iam/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`moto IAM ${params.Action} failed: HTTP ${res.status}: ${text.slice(0, 500)}`);
  return text;
}

function xmlValue(xml: string, tag: string): string {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!m) throw new Error(`moto: no <${tag}> in ${xml.slice(0, 500)}`);
  return m[1]!.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#43;/g, '+');
}

export async function startMoto(options: MotoOptions = {}): Promise<Moto> {
  const region = options.region ?? 'us-east-1';
  const bucket = options.bucket ?? 'velero-victoria-test';
  const auth = options.auth ?? true;
  const started = Date.now();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const logDir = mkdtempSync(join(tmpdir(), 'moto-'));
    const logFd = openSync(join(logDir, 'moto.log'), 'a+');
    const log = () => {
      try {
        const size = fstatSync(logFd).size;
        const len = Math.min(size, 64 * 1024);
        const buf = Buffer.alloc(len);
        readSync(logFd, buf, 0, len, size - len);
        return buf.toString();
      } catch {
        return '(moto log no longer available)';
      }
    };
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONPATH: paths.motoSitePackages, PYTHONDONTWRITEBYTECODE: '1', MOTO_PORT: String(port) };
    const child = auth || options.presignCheck === false
      ? spawn(paths.python3, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { env: { ...env, ...(auth ? { INITIAL_NO_AUTH_ACTION_COUNT: '3' } : {}) }, stdio: ['ignore', logFd, logFd] })
      : spawn(paths.python3, [PRESIGN_CHECK, '127.0.0.1', String(port)], {
          env: { ...env, PRESIGN_CREDENTIALS: `${NO_AUTH_CREDENTIALS.accessKeyId}:${NO_AUTH_CREDENTIALS.secretAccessKey}`, PRESIGN_REGION: region },
          stdio: ['ignore', logFd, logFd],
        });
    running.add(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let dead = false;
    void exited.then(() => {
      dead = true;
      running.delete(child);
    });
    const stop = async () => {
      if (!dead) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      try {
        closeSync(logFd);
      } catch {
        // already closed
      }
      rmSync(logDir, { recursive: true, force: true });
    };
    try {
      // Ready when /moto-api/ answers (it does not count against the unauthenticated requests).
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (dead) throw new Error(`moto exited during start-up:\n${log().slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`moto did not answer on ${endpoint} within 30 s:\n${log().slice(-4000)}`);
        try {
          const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          if (res.ok) break;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      let { accessKeyId, secretAccessKey } = NO_AUTH_CREDENTIALS;
      if (auth) {
        await iam(endpoint, region, { Action: 'CreateUser', UserName: 'velero-victoria' });
        await iam(endpoint, region, {
          Action: 'PutUserPolicy',
          UserName: 'velero-victoria',
          PolicyName: 'allow-all',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
        });
        const keyXml = await iam(endpoint, region, { Action: 'CreateAccessKey', UserName: 'velero-victoria' });
        accessKeyId = xmlValue(keyXml, 'AccessKeyId');
        secretAccessKey = xmlValue(keyXml, 'SecretAccessKey');
      }
      const client = new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return {
        endpoint,
        region,
        accessKeyId,
        secretAccessKey,
        bucket,
        startMs: Date.now() - started,
        s3Options: { endpoint, region, credentials: { accessKeyId, secretAccessKey } },
        client,
        keys: async (prefix) => {
          const out: string[] = [];
          let token: string | undefined;
          do {
            const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
            out.push(...(page.Contents ?? []).map((o) => o.Key!));
            token = page.NextContinuationToken;
          } while (token);
          return out;
        },
        log,
        stop: async () => {
          client.destroy();
          await stop();
        },
      };
    } catch (err) {
      lastError = err;
      await stop();
      // A port taken between freePort() and moto's bind makes moto exit: try another one.
      if (!/exited during start-up/.test(String((err as Error).message))) break;
    }
  }
  throw lastError;
}
