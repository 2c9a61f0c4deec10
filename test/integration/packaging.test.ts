/**
 * What the image gives Velero, checked without Docker: the Dockerfile's default command run against
 * the image's layout, the executable inside a glibc-only root file system (as in Velero's
 * distroless-like images), and the glibc versions every shipped ELF file asks for.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { paths, requireComponents, ROOT } from '../support/components.js';

interface DockerStage {
  from: string;
  name?: string;
  instructions: Array<{ op: string; args: string }>;
}

/** Enough of a Dockerfile parser for our own file: stages, instructions, line continuations. */
function parseDockerfile(text: string): DockerStage[] {
  const stages: DockerStage[] = [];
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: m?.[1] ?? args, name: m?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Highest GLIBC_x.y symbol version an ELF file requires. */
function maxGlibc(file: string): number[] {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const versions = [...out.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  return versions.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!).at(-1) ?? [0, 0];
}

describe('packaging: image layout, glibc-only root, glibc floor', function () {
  const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const final = dockerfile.at(-1)!;
  const json = (op: string) => JSON.parse(final.instructions.find((i) => i.op === op)?.args ?? 'null') as string[];
  let work: string;

  before(function () {
    requireComponents(this, paths.plugin, paths.pluginLib, paths.veleroHost, paths.glibcRoot);
    work = mkdtempSync(join(tmpdir(), 'packaging-'));
  });
  after(() => work && rmSync(work, { recursive: true, force: true }));

  it('the final image is non-root, has no shell-form commands and builds in stages', () => {
    expect(dockerfile.length).to.be.greaterThan(1);
    const user = final.instructions.find((i) => i.op === 'USER')?.args ?? '';
    expect(user).to.match(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(json('ENTRYPOINT')).to.deep.equal(['/plugins/velero-plugin-victoria']);
    expect(json('CMD')[0]).to.equal('install-plugin');
  });

  /** Lay out the image's /plugins from the final stage's COPY --from=build lines, then run its command. */
  function installLikeTheImage(): string {
    const image = join(work, 'image');
    for (const copy of final.instructions.filter((i) => i.op === 'COPY')) {
      const [, src, dst] = /^--from=build\s+\/src\/(\S+)\s+(\S+)$/.exec(copy.args) ?? [];
      expect(src, `unexpected COPY ${copy.args}`).to.be.a('string');
      const from = join(ROOT, src!);
      const to = join(image, dst!);
      if (statSync(from).isDirectory()) cpSync(from, to, { recursive: true });
      else {
        mkdirSync(join(to, '..'), { recursive: true });
        copyFileSync(from, to);
      }
    }
    const target = join(work, 'target');
    mkdirSync(target);
    const [entry] = json('ENTRYPOINT');
    const cmd = json('CMD').map((a) => (a === '/target' ? target : a));
    const res = spawnSync(join(image, entry!), cmd, { encoding: 'utf8' });
    expect(res.status, res.stderr).to.equal(0);
    return target;
  }

  it('its default command copies exactly one executable and 0644 libraries into /target', () => {
    const target = installLikeTheImage();
    const files = walk(target).map((f) => ({ path: relative(target, f), mode: statSync(f).mode & 0o777 }));
    expect(files.sort((a, b) => a.path.localeCompare(b.path))).to.deep.equal([
      { path: 'lib/libgcc_s.so.1', mode: 0o644 },
      { path: 'lib/libstdc++.so.6', mode: 0o644 },
      { path: 'velero-plugin-victoria', mode: 0o755 },
    ]);
  });

  it('passes the Velero host checks in a root that holds only libc6 and /proc, beside another plugin\'s libraries', function () {
    const target = join(work, 'target');
    const root = join(work, 'root');
    cpSync(paths.glibcRoot, root, { recursive: true, verbatimSymlinks: true });
    cpSync(target, join(root, 'plugins'), { recursive: true });
    // Velero runs plugins with LD_LIBRARY_PATH=/plugins, and its docs tell plugins that need C
    // libraries to put them there: another plugin's libstdc++ (here unloadable decoys) must not be
    // the one ours loads.
    for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) writeFileSync(join(root, 'plugins', lib), 'another plugin\'s library\n', { mode: 0o644 });
    mkdirSync(join(root, 'proc'));
    mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
    copyFileSync(paths.veleroHost, join(root, 'velero-host'));
    // Nothing else: no libstdc++ in the root, no shell; the host binary is static.
    expect(walk(root).some((f) => /libstdc\+\+/.test(f) && !f.includes('/plugins/'))).to.equal(false);
    const script = `mount -t proc proc '${root}/proc' && LD_LIBRARY_PATH=/plugins exec chroot '${root}' /velero-host -report /tmp/report.json -allow-execute-error -expect-noop=false -expect-resource= -- /plugins/velero-plugin-victoria --log-level=debug`;
    const res = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const report = JSON.parse(readFileSync(join(root, 'tmp', 'report.json'), 'utf8')) as { ok: boolean; checks: Array<{ name: string; ok: boolean; message: string }> };
    expect(report.checks.filter((c) => !c.ok), res.stderr).to.deep.equal([]);
    expect(report.ok).to.equal(true);
    expect(res.status, res.stderr).to.equal(0);
  });

  it('every shipped ELF file loads with glibc 2.35 (Ubuntu jammy, Velero <= v1.17.1)', () => {
    const target = join(work, 'target');
    const files = walk(target);
    expect(files.map((f) => relative(target, f)), 'the install ran').to.include('velero-plugin-victoria');
    for (const file of files) {
      const [major, minor] = maxGlibc(file);
      expect(major! * 1000 + minor!, `${relative(target, file)} needs GLIBC_${major}.${minor}`).to.be.at.most(2035);
    }
  });
});
