import { expect } from 'chai';
import { DEFAULT_CONFIG, parsePluginConfig } from '../../src/actions/plugin-config.js';

describe('plugin ConfigMap values', () => {
  const where = 'configmaps "velero-plugin-victoria" in namespace velero';

  it('maxParallelPodBackups: 1 by default, a whole number from 1 to 16, a bad value named with its range', () => {
    expect(DEFAULT_CONFIG.maxParallelPodBackups).to.equal(1);
    expect(parsePluginConfig({ maxParallelPodBackups: '3' }, where).maxParallelPodBackups).to.equal(3);
    for (const bad of ['0', '17', '2.5', 'two', '']) {
      expect(() => parsePluginConfig({ maxParallelPodBackups: bad }, where)).to.throw(
        `${where}: maxParallelPodBackups is ${JSON.stringify(bad)}, it must be a whole number from 1 to 16`,
      );
    }
  });

  it('fileListLimitMiB: 64 by default, a whole number from 1 to 1024', () => {
    expect(DEFAULT_CONFIG.fileListLimitMiB).to.equal(64);
    expect(parsePluginConfig({ fileListLimitMiB: '256' }, where).fileListLimitMiB).to.equal(256);
    for (const bad of ['0', '1025', '64MiB', '']) {
      expect(() => parsePluginConfig({ fileListLimitMiB: bad }, where)).to.throw(`${where}: fileListLimitMiB is ${JSON.stringify(bad)}, it must be a whole number from 1 to 1024`);
    }
  });

  it('restoreResources: resource names and quantities are checked here, not by the API server at restore time', () => {
    const ok = '{"requests":{"cpu":"100m","memory":"128Mi","example.com/gpu":1},"limits":{"memory":"1.5Gi","ephemeral-storage":"2G","hugepages-2Mi":"64Mi"}}';
    expect(parsePluginConfig({ restoreResources: ok }, where).restoreResources).to.deep.equal(JSON.parse(ok));
    const cases: Array<[string, RegExp]> = [
      ['{"limits":{"memroy":"1Gi"}}', /"limits\.memroy" is not a resource \(cpu, memory, ephemeral-storage/],
      ['{"requests":{"memory":"1 Gi"}}', /"requests\.memory" is "1 Gi", not a quantity such as "500m", "128Mi" or "1Gi"/],
      ['{"requests":{"cpu":"-1"}}', /"requests\.cpu" is "-1", not a quantity/],
      ['{"requests":{"memory":"1GB"}}', /"requests\.memory" is "1GB", not a quantity/],
    ];
    for (const [value, message] of cases) {
      expect(() => parsePluginConfig({ restoreResources: value }, where), value).to.throw(message);
    }
  });

  it('restoreSecurityContext: each field of the type Kubernetes takes', () => {
    const ok = '{"runAsUser":1000,"runAsGroup":0,"runAsNonRoot":true,"capabilities":{"drop":["ALL"]},"procMount":"Default","seccompProfile":null}';
    expect(parsePluginConfig({ restoreSecurityContext: ok }, where).restoreSecurityContext).to.deep.equal(JSON.parse(ok));
    const cases: Array<[string, RegExp]> = [
      ['{"runAsUser":"1000"}', /"runAsUser" is "1000", it must be a whole number from 0 \(unquoted\)/],
      ['{"runAsGroup":-1}', /"runAsGroup" is -1, it must be a whole number from 0/],
      ['{"runAsNonRoot":"true"}', /"runAsNonRoot" is "true", it must be a boolean/],
      ['{"capabilities":["ALL"]}', /"capabilities" is \["ALL"\], it must be an object/],
    ];
    for (const [value, message] of cases) expect(() => parsePluginConfig({ restoreSecurityContext: value }, where), value).to.throw(message);
  });
});
