import { expect } from 'chai';
import { drillPod, drillVerifyHost, verifyHookAnnotations } from '../../src/actions/drill-spec.js';
import type { Pod, Volume } from '../../src/actions/pod-spec.js';

const config = { drillPathPattern: '{path}-drill-{restore}', companionContainer: 'victoria-companion' };

/** A VictoriaMetrics pod with its data on /mnt/db1/vm and the extra volumes given. */
function pod(extra: { volumes: Volume[]; mounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }): Pod {
  return {
    kind: 'Pod',
    metadata: { name: 'vm-0', namespace: 'monitoring' },
    spec: {
      containers: [
        { name: 'vm', args: ['-storageDataPath=/storage'], volumeMounts: [{ name: 'data', mountPath: '/storage' }, ...extra.mounts] },
        { name: 'victoria-companion', volumeMounts: [{ name: 'data', mountPath: '/victoria-data', readOnly: true }] },
      ],
      volumes: [{ name: 'data', hostPath: { path: '/mnt/db1/vm', type: 'DirectoryOrCreate' } }, ...extra.volumes],
    },
  };
}

const drill = (p: Pod, pattern = config.drillPathPattern) => drillPod(p, p, p.spec!.volumes![0]!, { ...config, drillPathPattern: pattern }, { restore: 'r1', namespace: 'monitoring-drill' });
const hostPaths = (p: Pod) => Object.fromEntries((p.spec?.volumes ?? []).map((v) => [v.name, v.hostPath]));

describe('drillPod: no drill pod writes on a production hostPath', () => {
  it('moves every hostPath a container writes to (the cache, a file), and leaves read-only mounts, sockets and other volumes', () => {
    const p = pod({
      volumes: [
        { name: 'cache', hostPath: { path: '/var/cache/vm' } },
        { name: 'flags', hostPath: { path: '/etc/vm/extra.flags', type: 'File' } },
        { name: 'tz', hostPath: { path: '/etc/localtime', type: 'File' } },
        { name: 'sock', hostPath: { path: '/run/agent.sock', type: 'Socket' } },
        { name: 'tmp', emptyDir: {} },
      ],
      mounts: [
        { name: 'cache', mountPath: '/cache' },
        { name: 'flags', mountPath: '/flags' },
        { name: 'tz', mountPath: '/etc/localtime', readOnly: true },
        { name: 'sock', mountPath: '/run/agent.sock' },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    });
    const { pod: drilled, moved, note } = drill(p);
    expect(moved).to.deep.include({ production: '/mnt/db1/vm', path: '/mnt/db1/vm-drill-r1' });
    expect(hostPaths(drilled)).to.deep.equal({
      data: { path: '/mnt/db1/vm-drill-r1', type: 'DirectoryOrCreate' },
      cache: { path: '/var/cache/vm-drill-r1', type: 'DirectoryOrCreate' },
      flags: { path: '/etc/vm/extra.flags-drill-r1', type: 'FileOrCreate' },
      tz: { path: '/etc/localtime', type: 'File' },
      sock: { path: '/run/agent.sock', type: 'Socket' },
      tmp: undefined,
    });
    expect(note).to.contain('hostPath volume(s) cache (/var/cache/vm-drill-r1, not /var/cache/vm), flags (/etc/vm/extra.flags-drill-r1, not /etc/vm/extra.flags) moved as well');
    // Run again on its own output (an action after ours, Velero's retries): the same paths.
    expect(hostPaths(drillPod(drilled, p, drilled.spec!.volumes![0]!, config, { restore: 'r1', namespace: 'monitoring-drill' }).pod)).to.deep.equal(hostPaths(drilled));
  });

  it("refuses a drill path inside another production hostPath the pod writes to, naming the pattern's fix; a read-only parent is no production data", () => {
    const host = pod({ volumes: [{ name: 'host', hostPath: { path: '/' } }], mounts: [{ name: 'host', mountPath: '/host', readOnly: true }] });
    expect(hostPaths(drill(host).pod)).to.deep.equal({ data: { path: '/mnt/db1/vm-drill-r1', type: 'DirectoryOrCreate' }, host: { path: '/' } });
    const nested = pod({ volumes: [{ name: 'cache', hostPath: { path: '/mnt/db1/vm/cache' } }], mounts: [{ name: 'cache', mountPath: '/cache' }] });
    expect(() => drill(nested)).to.throw(
      'drillPathPattern "{path}-drill-{restore}" gives /mnt/db1/vm/cache-drill-r1 for production path /mnt/db1/vm/cache, which is in, at or above the pod\'s production hostPath /mnt/db1/vm: ' +
        'a drill must not write there; use a pattern that leads elsewhere, such as /srv/drills/{restore}{path}, in the plugin ConfigMap',
    );
    expect(hostPaths(drill(nested, '/srv/drills/{restore}{path}').pod)).to.deep.equal({
      data: { path: '/srv/drills/r1/mnt/db1/vm', type: 'DirectoryOrCreate' },
      cache: { path: '/srv/drills/r1/mnt/db1/vm/cache', type: 'DirectoryOrCreate' },
    });
  });
});

describe('drillVerifyHost: the drill verifies the copy in its own pod, never production', () => {
  const withCompanion = (companion: Record<string, unknown>): Pod => ({ kind: 'Pod', spec: { containers: [{ name: 'vm' }, { name: 'victoria-companion', ...companion }] } });
  const host = (companion: Record<string, unknown>) => drillVerifyHost(withCompanion(companion), 'victoria-companion');

  it('a loopback URL or the default needs nothing (an older companion, without --host, still runs the hook)', () => {
    expect(host({})).to.equal(undefined);
    expect(host({ env: [{ name: 'VICTORIA_URL', value: 'http://127.0.0.1:8428' }] })).to.equal(undefined);
    expect(host({ env: [{ name: 'VICTORIA_URL', value: 'http://localhost:9428' }] })).to.equal(undefined);
    expect(host({ args: ['companion', 'serve', '--url=http://[::1]:8428'] })).to.equal(undefined);
  });

  it('a Service name, a node address or a URL from a Secret gets --host 127.0.0.1, saying why', () => {
    expect(host({ env: [{ name: 'VICTORIA_URL', value: 'http://vmsingle.monitoring.svc:8428' }] })).to.deep.equal({
      host: '127.0.0.1',
      note: "its companion's URL names vmsingle.monitoring.svc, which from the drill pod may reach the production database, so the verify hook asks 127.0.0.1 on the same port",
    });
    // --url wins over the environment, as in the companion.
    expect(host({ env: [{ name: 'VICTORIA_URL', value: 'http://127.0.0.1:8428' }], args: ['companion', 'serve', '--url', 'http://10.0.0.7:8428'] })?.host).to.equal('127.0.0.1');
    expect(host({ env: [{ name: 'VICTORIA_URL', valueFrom: { secretKeyRef: { name: 'vm-url', key: 'url' } } }] })?.note).to.contain('comes from a Secret or ConfigMap');
    const command = JSON.parse(verifyHookAnnotations({ companion: 'victoria-companion', counts: { series: 1 }, waitTimeoutSeconds: 60, healthTimeoutSeconds: 300, countTimeoutSeconds: 300, host: '127.0.0.1' })['post.hook.restore.velero.io/command']!) as string[];
    expect(command.slice(-2)).to.deep.equal(['--host', '127.0.0.1']);
  });
});
