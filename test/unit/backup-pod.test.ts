import { expect } from 'chai';
import { failureText } from '../../src/actions/backup-pod.js';

describe('pod backup: what failed the item', () => {
  const timeout = new Error('the backup took longer than itemTimeoutSeconds (10 s) and was stopped');
  const timedOut = () => {
    const c = new AbortController();
    c.abort(timeout);
    return c.signal;
  };

  it('a failure within the time limit is its own message', () => {
    expect(failureText(new Error('S3 AccessDenied'), new AbortController().signal)).to.equal('S3 AccessDenied');
  });

  it('the timeout in its own words when it caused the failure', () => {
    expect(failureText(timeout, timedOut())).to.equal(timeout.message);
    expect(failureText(new Error(`exec stopped: ${timeout.message}`), timedOut())).to.equal(timeout.message);
  });

  it('a failure of its own that the time limit overtook during the clean-up keeps its message', () => {
    expect(failureText(new Error('S3 AccessDenied'), timedOut())).to.equal(`${timeout.message}; the error it ended with: S3 AccessDenied`);
  });
});
