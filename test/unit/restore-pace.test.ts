/** The restore action's check that a paced download can end before the plan's links expire. */
import { expect } from 'chai';
import { paceProblem } from '../../src/actions/restore-pod.js';

describe('restore action: restoreMaxBytesPerSecond against the plan expiry', () => {
  const now = Date.parse('2026-11-23T00:00:00Z');
  const config = { restoreMaxBytesPerSecond: 50 * 2 ** 20, restorePlanExpirySeconds: 14_400 };
  const plan = { bytes: 2 ** 40, expiresAt: '2026-11-23T04:00:00.000Z' };

  it('refuses 1 TiB at 50 MiB/s against 4 h, naming both keys and the limit', () => {
    expect(paceProblem(config, plan, now)).to.equal(
      "its 1024.00 GiB at restoreMaxBytesPerSecond 50.0 MiB/s take at least 5.8 h, but the restore plan's links expire in 4.0 h (at 2026-11-23T04:00:00.000Z, restorePlanExpirySeconds 14400): " +
        'the init container would fail when they expire. Raise restorePlanExpirySeconds (at most 604800, 7 days) or restoreMaxBytesPerSecond in the plugin ConfigMap, then restore again',
    );
  });

  it("names the credentials' session when it ends the links earlier", () => {
    expect(paceProblem(config, { ...plan, sessionEndsAt: '2026-11-23T04:00:00.000Z' }, now)).to.match(/\(at 2026-11-23T04:00:00\.000Z, when the location's credentials' session ends\)/);
  });

  it('passes a pace that fits, and no pace at all', () => {
    expect(paceProblem(config, { ...plan, bytes: 600 * 2 ** 30 }, now)).to.equal(undefined);
    expect(paceProblem({ ...config, restoreMaxBytesPerSecond: 0 }, plan, now)).to.equal(undefined);
  });
});
