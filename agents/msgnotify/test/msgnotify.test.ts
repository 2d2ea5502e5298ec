// The commands without a broker: msgnotify's arguments and exit codes (cvmfs_swissknife notify's), and the gateway's
// configuration errors (FILE:LINE: key, exit 2) and environment overrides.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { formatManifest } from '@msgbricks/notify';
import { useTempDir } from '@msgbricks/test-support';
import { parseClientArgs } from '../src/client';
import { loadConfig } from '../src/config';
import { run } from './run';

jest.setTimeout(60_000);

const tmp = useTempDir('msgnotify-');

describe('msgnotify - arguments', () => {
  test('msgnotify - swissknife flags are parsed, grouped or not, with values attached or apart', () => {
    expect(parseClientArgs(['-s', '-u', 'http://gw:4929/api/v1/', '-t', 'r.org', '-m', '5', '-cv'], {})).toEqual({
      mode: 'subscribe',
      url: new URL('http://gw:4929/api/v1'),
      topic: 'r.org',
      minRevision: 5,
      continuous: true,
      verbose: true,
      noVerify: false,
      cvmfsConfigDir: '/etc/cvmfs',
    });
    expect(parseClientArgs(['-p', '-uhttp://gw/api/v1', '-r/srv/repo', '-T', 'tok'], {})).toMatchObject({
      mode: 'publish',
      repository: '/srv/repo',
      token: 'tok',
    });
    expect(parseClientArgs(['-s', '-u', 'http://gw', '-t', 'r'], { MSGNOTIFY_TOKEN: 'env-tok' }).token).toBe('env-tok');
  });

  test('msgnotify - bad arguments exit 1, every problem named at once', async () => {
    const r = await run('msgnotify', ['-p', '-s', '-x', '-m', 'abc']);
    expect(r.code).toBe(1);
    for (const what of ['exactly one of -p and -s', 'unknown option -x', '-u URL is needed', '"abc" is not a revision']) {
      expect(r.stderr).toContain(what);
    }
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect((await run('msgnotify', ['-s', '-u', 'ftp://x', '-t', 'r'])).code).toBe(1);
    expect((await run('msgnotify', ['-h'])).code).toBe(0);
    expect((await run('msgnotify', ['--help'])).code).toBe(0);
  });

  test('msgnotify - -s without a key or a server URL in the cvmfs configuration exits 1 naming what is missing; a broken file exits 2', async () => {
    const etc = path.join(tmp.path, 'etc-cvmfs');
    const args = ['-s', '-u', 'http://127.0.0.1:1/api/v1', '-t', 'nokey.example.org'];
    const none = await run('msgnotify', args, { MSGNOTIFY_CVMFS_CONFIG_DIR: etc });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no public key for nokey.example.org');
    expect(none.stderr).toContain('no server URL for nokey.example.org');
    expect(none.stderr).toContain(`no configuration file under ${etc}`);
    fs.mkdirSync(path.join(etc, 'keys'), { recursive: true });
    fs.writeFileSync(path.join(etc, 'keys', 'example.org.pub'), 'not a key, but a file');
    fs.writeFileSync(path.join(etc, 'default.conf'), '# nothing\n');
    const noUrl = await run('msgnotify', args, { MSGNOTIFY_CVMFS_CONFIG_DIR: etc });
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).not.toContain('no public key');
    expect(noUrl.stderr).toContain(
      `no server URL for nokey.example.org: give -r REPOSITORY_URL_OR_PATH, or set CVMFS_SERVER_URL (read: ${etc}/default.conf;`,
    );
    // -k and -r: no configuration read; a missing -k file is named.
    const missingKey = await run('msgnotify', [...args, '-k', path.join(tmp.path, 'none.pub'), '-r', tmp.path], {
      MSGNOTIFY_CVMFS_CONFIG_DIR: etc,
    });
    expect(missingKey.code).toBe(1);
    expect(missingKey.stderr).toContain('none.pub (ENOENT)');
    fs.writeFileSync(path.join(etc, 'default.local'), 'CVMFS_SERVER_URL=x\nfi\n');
    const broken = await run('msgnotify', args, { MSGNOTIFY_CVMFS_CONFIG_DIR: etc });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/default\.local: Syntax error/);
    expect(broken.stderr).not.toMatch(/at .*\.js:\d+/);
    expect((await run('msgnotify', [...args, '--no-verify', '-k', 'x.pub'])).code).toBe(1);
  });

  test('msgnotify - a missing local manifest exits 7, an unreadable one 8, a failed download 6, a failed publish 9', async () => {
    const missing = await run('msgnotify', ['-p', '-u', 'http://127.0.0.1:1/api/v1', '-r', path.join(tmp.path, 'nope')]);
    expect(missing.code).toBe(7);
    expect(missing.stderr).toContain('ENOENT');
    // A directory where the manifest should be: it opens, and reading it fails.
    const repo = path.join(tmp.path, 'repo');
    fs.mkdirSync(path.join(repo, '.cvmfspublished'), { recursive: true });
    const unreadable = await run('msgnotify', ['-p', '-u', 'http://127.0.0.1:1/api/v1', '-r', repo]);
    expect(unreadable.code).toBe(8);
    expect(unreadable.stderr).toContain('EISDIR');
    const server = http.createServer((req, res) => {
      res.writeHead(req.url === '/repo/.cvmfspublished' ? 404 : 500);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const download = await run('msgnotify', ['-p', '-u', 'http://127.0.0.1:1/api/v1', '-r', `http://127.0.0.1:${port}/repo`]);
      expect(download.code).toBe(6);
      expect(download.stderr).toContain('HTTP 404');
      const file = path.join(tmp.path, 'manifest');
      fs.writeFileSync(file, formatManifest({ S: 3, N: 'p.org' }));
      // A gateway answering 500 every time: tried again, then exit 9.
      const failed = await run('msgnotify', ['-p', '-u', `http://127.0.0.1:${port}/api/v1`, '-r', file]);
      expect(failed.code).toBe(9);
      expect(failed.stderr).toContain('HTTP 500');
    } finally {
      server.close();
    }
  });
});

describe('msgnotify-gateway - configuration', () => {
  test('msgnotify-gateway - every problem at once with FILE:LINE and key, exit 2', async () => {
    const file = path.join(tmp.path, 'bad.yaml');
    fs.writeFileSync(
      file,
      [
        'port: 99999',
        'log_level: loud',
        'brokr:',
        '  uri: x',
        'publish:',
        '  r.org:',
        '    tokens: { ci: short }',
        '    colour: red',
        'workers: 1.5',
        'broker:',
        '  repositories: [ok.example.org, "not a name"]',
        '',
      ].join('\n'),
    );
    const r = await run('msgnotify-gateway', ['--config', file, '--check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: port: must be a number from 0 to 65535`);
    expect(r.stderr).toContain(`${file}:2: log_level: must be one of`);
    expect(r.stderr).toContain(`${file}:4: brokr.uri: unknown key`);
    expect(r.stderr).toContain(`${file}:7: publish.r.org.tokens: must map names to secrets`);
    expect(r.stderr).toContain(`${file}:8: publish.r.org.colour: unknown key`);
    expect(r.stderr).toContain(`${file}:9: workers: must be a whole number`);
    expect(r.stderr).toContain(`${file}:11: broker.repositories: must be a list of repository names`);
    const syntax = path.join(tmp.path, 'syntax.json');
    fs.writeFileSync(syntax, '{\n  "port": 4929,\n  "log_level": \n}\n');
    const s = await run('msgnotify-gateway', ['--config', syntax, '--check-config']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain(`${syntax}:4: syntax: a value is expected`);
    const none = await run('msgnotify-gateway', ['--config', path.join(tmp.path, 'none.json')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('ENOENT');
    expect((await run('msgnotify-gateway', ['--bogus'])).code).toBe(2);
  });

  test('msgnotify-gateway - verify: keys and url per repository, several URLs with ";", every problem with FILE:LINE', async () => {
    const keys = path.join(tmp.path, 'keys');
    fs.mkdirSync(keys, { recursive: true });
    fs.writeFileSync(path.join(keys, 'example.org.pub'), 'PEM');
    const good = path.join(tmp.path, 'verify.yaml');
    fs.writeFileSync(
      good,
      [
        'verify:',
        "  '*':",
        `    keys: ${keys}`,
        "    url: 'http://s0.example.org/cvmfs/@fqrn@;http://s1.example.org/cvmfs/@fqrn@'",
        '  atlas.example.org:',
        `    keys: [${keys}/example.org.pub]`,
        '    url: [/srv/cvmfs/atlas.example.org]',
        '',
      ].join('\n'),
    );
    expect(loadConfig(good, {}).verify).toEqual({
      '*': { keys: [keys], locations: ['http://s0.example.org/cvmfs/@fqrn@', 'http://s1.example.org/cvmfs/@fqrn@'] },
      'atlas.example.org': { keys: [`${keys}/example.org.pub`], locations: ['/srv/cvmfs/atlas.example.org'] },
    });
    expect(loadConfig(undefined, {}).verify).toEqual({});
    const bad = path.join(tmp.path, 'verify-bad.yaml');
    fs.writeFileSync(
      bad,
      [
        'verify:',
        '  a.example.org:',
        `    keys: ${tmp.path}/nope.pub`,
        '    url: http://s0/cvmfs/@fqrn@',
        '  b.example.org:',
        '    url: [1, 2]',
        '    colour: red',
        '  c.example.org: yes',
        '',
      ].join('\n'),
    );
    const r = await run('msgnotify-gateway', ['--config', bad, '--check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: verify.a.example.org.keys: cannot read ${tmp.path}/nope.pub (stat: ENOENT)`);
    expect(r.stderr).toContain(`${bad}:6: verify.b.example.org.url: must be a URL or directory, or a list`);
    expect(r.stderr).toContain(`${bad}:7: verify.b.example.org.colour: unknown key (keys, url)`);
    expect(r.stderr).toContain('verify.b.example.org: needs keys');
    expect(r.stderr).toContain(`${bad}:8: verify.c.example.org: a repository entry must be a mapping (keys, url)`);
  });

  test("msgnotify-gateway - cvmfs-notify's config.json and its CVMFS_NOTIFY_* overrides (the AMQP ones too)", () => {
    const file = path.join(tmp.path, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ port: 4930, log_level: 'info', broker: { user: 'file-user', vhost: '/cvmfs' } }));
    const c = loadConfig(file, {
      CVMFS_NOTIFY_PORT: '5000',
      CVMFS_NOTIFY_LOG_LEVEL: 'debug',
      CVMFS_NOTIFY_AMQP_URL: 'broker.example.org',
      CVMFS_NOTIFY_AMQP_PORT: '61999',
      CVMFS_NOTIFY_AMQP_USERNAME: 'env-user',
      CVMFS_NOTIFY_AMQP_PASSWORD: 'env-pass',
      CVMFS_NOTIFY_AMQP_EXCHANGE: 'other.activity',
    });
    expect(c.port).toBe(5000);
    expect(c.logLevel).toBe('debug');
    // A partial block overrides only what it names (cvmfs-notify's shallow merge replaced all the defaults).
    expect(c.broker).toEqual({
      uri: 'stomp://broker.example.org:61999',
      user: 'env-user',
      pass: 'env-pass',
      vhost: '/cvmfs',
      exchange: 'other.activity',
      repositories: [],
    });
    const legacy = path.join(tmp.path, 'legacy.yaml');
    fs.writeFileSync(legacy, 'broker:\n  repositories: [atlas.cern.ch, cms.cern.ch]\n');
    expect(loadConfig(legacy, {}).broker.repositories).toEqual(['atlas.cern.ch', 'cms.cern.ch']);
    expect(() => loadConfig(undefined, { CVMFS_NOTIFY_PORT: 'x' })).toThrow(
      'environment CVMFS_NOTIFY_PORT: port: must be a number',
    );
  });
});
