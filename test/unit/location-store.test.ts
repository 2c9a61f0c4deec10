/** Which credentials a BackupStorageLocation gives the plugin's S3 store, as velero-plugin-for-aws takes them. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { abortOpenUploads, removeStaleCredentials } from '../../src/actions/open-locations.js';
import { openLocationStore } from '../../src/actions/storage.js';
import type { KubeClient } from '../../src/kube/client.js';
import type { BackupStorageLocation } from '../../src/kube/velero-objects.js';
import { startLoopbackServer } from '../support/loopback-server.js';

function kubeWith(config: Record<string, string>, credential?: { name: string; key: string }, caCert?: string): KubeClient {
  const bsl = {
    apiVersion: 'velero.io/v1',
    kind: 'BackupStorageLocation',
    metadata: { name: 'default', namespace: 'velero' },
    spec: {
      provider: 'aws',
      objectStorage: { bucket: 'bkt', prefix: 'velero', ...(caCert ? { caCert: Buffer.from(caCert).toString('base64') } : {}) },
      config,
      ...(credential ? { credential } : {}),
    },
  } as unknown as BackupStorageLocation;
  return {
    getBackupStorageLocation: async () => bsl,
    getSecretKey: async () => Buffer.from('[default]\naws_access_key_id = AKIDFROMSECRET\naws_secret_access_key = s\n'),
  } as unknown as KubeClient;
}

/** The access key id the store's client resolves, without sending a request. */
async function accessKeyOf(kube: KubeClient, env: NodeJS.ProcessEnv): Promise<string> {
  const location = await openLocationStore({ kube, namespace: 'velero', location: 'default', prefixOf: (p) => `${p}/plugins/victoria`, write: true, env });
  try {
    const client = (location.store as unknown as { client: S3Client }).client;
    return (await client.config.credentials()).accessKeyId;
  } finally {
    await location.close();
  }
}

describe('storage location credentials', () => {
  let dir: string;
  let veleroFile: string;
  let ownFile: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vpv-bsl-'));
    veleroFile = join(dir, 'cloud');
    ownFile = join(dir, 'own');
    writeFileSync(veleroFile, '[default]\naws_access_key_id = AKIDVELEROFILE\naws_secret_access_key = s\n');
    writeFileSync(ownFile, '[default]\naws_access_key_id = AKIDOWNFILE\naws_secret_access_key = s\n[other]\naws_access_key_id = AKIDOTHERPROFILE\naws_secret_access_key = s\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("takes the location's Secret first, then its config's credentialsFile, then Velero's file", async () => {
    const env = { AWS_SHARED_CREDENTIALS_FILE: veleroFile };
    expect(await accessKeyOf(kubeWith({ region: 'us-east-1', credentialsFile: ownFile }, { name: 'c', key: 'cloud' }), env)).to.equal('AKIDFROMSECRET');
    expect(await accessKeyOf(kubeWith({ region: 'us-east-1', credentialsFile: ownFile }), env)).to.equal('AKIDOWNFILE');
    expect(await accessKeyOf(kubeWith({ region: 'us-east-1', credentialsFile: ownFile, profile: 'other' }), env)).to.equal('AKIDOTHERPROFILE');
    expect(await accessKeyOf(kubeWith({ region: 'us-east-1' }), env)).to.equal('AKIDVELEROFILE');
  });

  it('refuses a location of another provider, a ReadOnly one for writing (not for reading), and one without a bucket, naming it', async () => {
    const open = (spec: Record<string, unknown>, write: boolean) =>
      openLocationStore({
        kube: { getBackupStorageLocation: async () => ({ metadata: { name: 'default', namespace: 'velero' }, spec: { provider: 'aws', objectStorage: { bucket: 'bkt' }, config: { region: 'us-east-1' }, ...spec } }) } as unknown as KubeClient,
        namespace: 'velero',
        location: 'default',
        prefixOf: (p) => `${p}/plugins/victoria`,
        write,
        env: { AWS_SHARED_CREDENTIALS_FILE: veleroFile },
      });
    const where = 'backupstoragelocations.velero.io "default" in namespace velero';
    const message = (p: Promise<unknown>) => p.then(() => 'opened', (e: Error) => e.message);
    expect(await message(open({ provider: 'velero.io/gcp' }, false))).to.equal(`${where} uses provider "velero.io/gcp": velero-plugin-victoria writes to S3-compatible storage only (provider aws, velero-plugin-for-aws)`);
    expect(await message(open({ accessMode: 'ReadOnly' }, true))).to.equal(`${where} is ReadOnly: Victoria data cannot be backed up into it; back up to a ReadWrite location`);
    const readOnly = await open({ accessMode: 'ReadOnly', objectStorage: { bucket: 'bkt', prefix: 'velero' } }, false);
    expect(readOnly.bucket, 'a restore reads a ReadOnly location').to.equal('bkt');
    await readOnly.close();
    expect(await message(open({ objectStorage: { bucket: '/' } }, false))).to.equal(`${where} has no spec.objectStorage.bucket`);
  });

  it('passes on only the certificates of a CA bundle that holds a private key too (the restore puts it into the application namespace)', async () => {
    const cert = (n: number) => `-----BEGIN CERTIFICATE-----\nMIIC${n}AAAA\n-----END CERTIFICATE-----`;
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvTOPSECRETKEY\n-----END PRIVATE KEY-----';
    const bundle = `${cert(1)}\n${key}\n${cert(2)}\n`;
    const location = await openLocationStore({
      kube: kubeWith({ region: 'us-east-1', s3Url: 'https://s3.example.internal' }, undefined, bundle),
      namespace: 'velero',
      location: 'default',
      prefixOf: (p) => `${p}/plugins/victoria`,
      write: false,
      env: { AWS_SHARED_CREDENTIALS_FILE: veleroFile },
    });
    try {
      expect(location.tls.caCert).to.equal(`${cert(1)}\n${cert(2)}\n`);
    } finally {
      await location.close();
    }
  });

  it("the Secret's copy is removed on close, and by a process that exits with the location open (Velero's SIGTERM, a crash)", async () => {
    const fileOf = (location: { store: unknown }) => (location.store as { options: { credentialsFile: string } }).options.credentialsFile;
    const location = await openLocationStore({ kube: kubeWith({ region: 'us-east-1' }, { name: 'c', key: 'cloud' }), namespace: 'velero', location: 'default', prefixOf: () => 'plugins/victoria', write: true, env: {} });
    const file = fileOf(location);
    expect(existsSync(file)).to.equal(true);
    await location.close();
    expect(existsSync(file)).to.equal(false);

    const script = `
      import { openLocationStore } from './src/actions/storage.ts';
      const kube = { getBackupStorageLocation: async () => ({ metadata: { name: 'default' }, spec: { provider: 'aws', objectStorage: { bucket: 'bkt' }, config: { region: 'us-east-1' }, credential: { name: 'c', key: 'cloud' } } }), getSecretKey: async () => Buffer.from('[default]\\n') };
      const location = await openLocationStore({ kube, namespace: 'velero', location: 'default', prefixOf: () => 'plugins/victoria', write: true, env: {} });
      console.log(location.store.options.credentialsFile);
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).to.equal(0);
    const left = child.stdout.trim();
    expect(left).to.match(/velero-plugin-victoria-credentials-.*\/credentials$/);
    expect(existsSync(left)).to.equal(false);
  });

  it("a copy left by a process killed with SIGKILL is removed by the next plugin process; a live process's never", async () => {
    const script = `
      import { openLocationStore } from './src/actions/storage.ts';
      const kube = { getBackupStorageLocation: async () => ({ metadata: { name: 'default' }, spec: { provider: 'aws', objectStorage: { bucket: 'bkt' }, config: { region: 'us-east-1' }, credential: { name: 'c', key: 'cloud' } } }), getSecretKey: async () => Buffer.from('[default]\\n') };
      await openLocationStore({ kube, namespace: 'velero', location: 'default', prefixOf: () => 'plugins/victoria', write: true, env: {} });
      process.kill(process.pid, 'SIGKILL');`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TMPDIR: dir } });
    expect(child.signal, child.stderr).to.equal('SIGKILL');
    const killed = readdirSync(dir).filter((n) => n.startsWith('velero-plugin-victoria-credentials-'));
    expect(killed).to.have.length(1);
    expect(killed[0]).to.match(new RegExp(`^velero-plugin-victoria-credentials-${child.pid}-`));
    // Another plugin process's (alive: this one, pid 1) and an older version's (no pid) stay.
    const kept = [`velero-plugin-victoria-credentials-${process.pid}-aaaaaa`, 'velero-plugin-victoria-credentials-1-bbbbbb', 'velero-plugin-victoria-credentials-Ab12Cd'];
    for (const name of kept) mkdirSync(join(dir, name));
    expect(await removeStaleCredentials(dir)).to.deep.equal(killed);
    expect(readdirSync(dir).filter((n) => n.startsWith('velero-plugin-victoria-credentials-')).sort()).to.deep.equal([...kept].sort());
  });

  it('abortOpenUploads aborts the multipart uploads of every location open (a plugin process told to exit mid-backup)', async () => {
    // An S3 endpoint that starts multipart uploads, answers no part until the upload is aborted
    // (then NoSuchUpload), and records the requests.
    const requests: string[] = [];
    let aborted = false;
    const hung = new Set<ServerResponse>();
    const server = await startLoopbackServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      req.resume();
      requests.push(`${req.method} ${url.pathname}${url.search.includes('uploads') ? ' create' : url.searchParams.has('partNumber') ? ' part' : ''}`);
      if (req.method === 'PUT' && !aborted) return void hung.add(res);
      if (req.method === 'PUT') {
        res.writeHead(404, { 'content-type': 'application/xml' });
        return void res.end('<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
      }
      if (req.method === 'DELETE') aborted = true;
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(req.method === 'POST' ? '<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>' : '');
    });
    const endpoint = server.url;
    const location = await openLocationStore({
      kube: kubeWith({ region: 'us-east-1', s3Url: endpoint, s3ForcePathStyle: 'true', credentialsFile: ownFile }),
      namespace: 'velero', location: 'default', prefixOf: () => 'plugins/victoria', write: true, env: {},
    });
    try {
      const size = 9 * 1024 * 1024; // above the default part size (8 MiB)
      const upload = location.store.put('big', Buffer.alloc(size), size).catch((e: Error) => e);
      for (let waited = 0; !requests.some((r) => r.endsWith(' part')); waited += 10) {
        expect(waited, `no part was sent: ${requests.join(', ')}`).to.be.below(10_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(await abortOpenUploads()).to.equal(1);
      expect(requests).to.include('DELETE /bkt/plugins/victoria/big');
      for (const res of hung) res.destroy();
      expect(await upload).to.be.instanceOf(Error);
    } finally {
      await location.close();
      await server.close();
    }
    expect(await abortOpenUploads(), 'closed locations are forgotten').to.equal(0);
  });
});
