// Tests run against the TypeScript sources of the libraries (mapped below); command tests run the built
// commands, which `npm test` builds first with `tsc -b`. Type checking is `npm run lint`'s job, so ts-jest
// only transpiles (isolatedModules in tsconfig.tests.json).
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.tests.json' }] },
  moduleNameMapper: { '^@msgbricks/([a-z-]+)$': '<rootDir>/packages/$1/src' },
  rootDir: __dirname,
};

/** @type {import('jest').Config} */
module.exports = {
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
      ],
      setupFiles: ['<rootDir>/packages/dirq/test/helpers/js-path.js'],
    },
    {
      // The commands as a user gets them (scripts/test): linked by npm ci, installed on a host, README's hand-run
      // transfer against a private RabbitMQ; plain JavaScript, run against the built tree.
      displayName: 'commands',
      testEnvironment: 'node',
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
