// Tests run against the TypeScript sources of the libraries (mapped below); command tests run the built
// commands, which `npm test` builds first with `tsc -b`. Type checking is `npm run lint`'s job, so ts-jest
// only transpiles (isolatedModules in tsconfig.tests.json).
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.tests.json' }] },
  moduleNameMapper: { '^@msgbricks/([a-z-]+)$': '<rootDir>/packages/$1/src' },
  rootDir: __dirname,
  // Tests wait for events (a command's exit, a log line, a file), never for a fixed time: jest's 5 s default is
  // shorter than three start-ups of a command on a loaded 2-core machine (CI's size), so it failed tests that passed.
  testTimeout: 60_000,
};

/** @type {import('jest').Config} */
module.exports = {
  // Jest reads testTimeout from the global configuration only (a project's own is ignored): without this line every
  // test had jest's 5 s default, and the slower ones failed on a loaded machine (seen: control.test.ts, --pidfile).
  testTimeout: common.testTimeout,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/agents/*/test/**/*.test.ts'],
      // The private brokers' own suite has its project below.
      testPathIgnorePatterns: [
        '\\.interop\\.test\\.ts$',
        '/node_modules/',
        '<rootDir>/packages/test-support/test/brokers\\.test\\.ts$',
      ],
    },
    {
      ...common,
      displayName: 'interop',
      testMatch: ['<rootDir>/packages/*/test/**/*.interop.test.ts', '<rootDir>/agents/*/test/**/*.interop.test.ts'],
    },
    {
      // The queue suites once more with the native binding off (packages/dirq/src/native.ts): both paths stay tested.
      ...common,
      displayName: 'dirq-js',
      testMatch: [
        '<rootDir>/packages/dirq/test/{simple,crash,property}.test.ts',
        '<rootDir>/packages/dirq/test/interop-simple.interop.test.ts',
        '<rootDir>/packages/handler/test/runner.test.ts',
      ],
      setupFiles: ['<rootDir>/packages/dirq/test/helpers/js-path.js'],
    },
    {
      // The commands as a user gets them (scripts/test): linked by npm ci, installed on a host, README's hand-run
      // transfer against a private RabbitMQ; plain JavaScript, run against the built tree.
      displayName: 'commands',
      testEnvironment: 'node',
      testTimeout: 60_000,
      rootDir: __dirname,
      testMatch: ['<rootDir>/scripts/test/**/*.test.js'],
    },
    {
      // The private RabbitMQ/ActiveMQ instances themselves (@msgbricks/test-support, docs/brokers.md).
      ...common,
      displayName: 'brokers',
      testMatch: ['<rootDir>/packages/test-support/test/brokers.test.ts'],
    },
  ],
};
