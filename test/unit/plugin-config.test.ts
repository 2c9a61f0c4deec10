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
});
