/** Whether the restored pod's database is new enough for the backup's data (src/actions/database-version.ts). */
import { expect } from 'chai';
import { imageVersion, olderDatabaseProblem, parseVersion } from '../../src/actions/database-version.js';

describe('database version of a restore', () => {
  it('reads versions from /metrics and from image tags, not from registry ports or digests', () => {
    expect(parseVersion('v1.145.0')).to.deep.equal([1, 145, 0]);
    expect(parseVersion('victoria-metrics-20260101-tags-v1.102.1-0-gabc')).to.deep.equal([1, 102, 1]);
    expect(parseVersion('unknown')).to.equal(undefined);
    expect(imageVersion('victoriametrics/victoria-metrics:v1.79.5')).to.deep.equal([1, 79, 5]);
    expect(imageVersion('registry:5000/victoriametrics/victoria-logs:v1.50.0-victorialogs')).to.deep.equal([1, 50, 0]);
    expect(imageVersion('registry:5000/victoriametrics/victoria-metrics')).to.equal(undefined);
    expect(imageVersion('victoriametrics/victoria-metrics:latest')).to.equal(undefined);
    expect(imageVersion('victoriametrics/victoria-metrics:v1.79.5@sha256:00ff')).to.deep.equal([1, 79, 5]);
    expect(imageVersion('victoriametrics/victoria-metrics@sha256:00ff')).to.equal(undefined);
  });

  it('names a database older than the data, and why', () => {
    const legacy = ['data/small/2022_11/1_2_20221110_abc/index.bin'];
    const current = ['data/small/2026_11/parts.json', 'data/small/2026_11/17A/index.bin'];
    expect(olderDatabaseProblem('metrics', { version: 'v1.145.0', files: current }, 'vm:v1.79.5')).to.equal(
      'its data was written by VictoriaMetrics v1.145.0, and the restored pod runs vm:v1.79.5, which is older: VictoriaMetrics before v1.90 cannot open data written by v1.90 or later ' +
        '(the storage format changed), so it will not start on the restored data; run v1.145.0 or later in the restored pod (a Velero resource modifier on the Restore can change the image)',
    );
    expect(olderDatabaseProblem('metrics', { version: 'v1.145.0', files: current }, 'vm:v1.120.0')).to.match(/which is older: VictoriaMetrics does not promise to read data a newer version wrote; run v1\.145\.0 or later/);
    expect(olderDatabaseProblem('logs', { version: 'v1.50.0', files: [] }, 'vl:v1.20.0')).to.match(/^its data was written by VictoriaLogs v1\.50\.0, .*VictoriaLogs does not promise/);
    // Without a version, the format tells.
    expect(olderDatabaseProblem('metrics', { files: current }, 'vm:v1.79.5')).to.match(/^its data is in the storage format of VictoriaMetrics v1\.90 and later \(parts\.json\)/);
    // Nothing to say: as new or newer, unknown on either side, the old format.
    expect(olderDatabaseProblem('metrics', { version: 'v1.145.0', files: current }, 'vm:v1.145.0')).to.equal(undefined);
    expect(olderDatabaseProblem('metrics', { version: 'v1.79.5', files: legacy }, 'vm:v1.145.0')).to.equal(undefined);
    expect(olderDatabaseProblem('metrics', { files: legacy }, 'vm:v1.79.5')).to.equal(undefined);
    expect(olderDatabaseProblem('metrics', { files: current }, 'vm:latest')).to.equal(undefined);
    expect(olderDatabaseProblem('metrics', { files: current }, undefined)).to.equal(undefined);
    expect(olderDatabaseProblem('logs', { files: ['partitions/20261121/parts.json'] }, 'vl:v0.1.0')).to.equal(undefined);
  });
});
