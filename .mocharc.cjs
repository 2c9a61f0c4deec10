// Mocha's configuration. In CI (REQUIRE_INTEGRATION=1) every test must run: a stray `.only`
// would run a subset and pass, and a skipped or pending test would hide a missing component, so
// both fail the run there. Locally a missing component may still skip its tests.
'use strict';
const ci = process.env.REQUIRE_INTEGRATION === '1';
module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
  timeout: 120000,
  reporter: 'test/support/reporter.cjs',
  'forbid-only': true,
  'forbid-pending': ci,
};
