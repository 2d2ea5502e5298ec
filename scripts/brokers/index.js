// Private, throwaway message brokers for tests, benchmarks and the demo: RabbitMQ 3.10 (Debian `rabbitmq-server`,
// with the STOMP and AMQP 1.0 plugins) and ActiveMQ 5.17 (Debian `activemq`, STOMP), each started in the foreground
// as a child process of the caller, on free loopback ports, with everything it writes in its own temporary
// directory. See docs/brokers.md.

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const ACTIVEMQ_JAR = '/usr/share/activemq/bin/activemq.jar';
const ACTIVEMQ_LAUNCHER = '/usr/bin/activemq';
const HOST = '127.0.0.1';
const STARTUP_TIMEOUT_MS = Number(process.env.MSGBRICKS_BROKER_TIMEOUT_MS) || 90_000;
const STOP_TIMEOUT_MS = 30_000;
const KEYSTORE_PASSWORD = 'msgbricks';
const CLIENT_CN = 'msgbricks-client';

/**
 * @typedef {object} TlsMaterial
 * @property {string} caFile PEM of the throwaway CA that signed both certificates
 * @property {string} certFile the broker's certificate (CN=localhost, SAN IP:127.0.0.1, DNS:localhost)
 * @property {string} keyFile the broker's private key
 * @property {string} clientCertFile the client certificate, CN=msgbricks-client
 * @property {string} clientKeyFile the client's private key
 */

/**
 * @typedef {object} Broker
 * @property {'rabbitmq' | 'activemq'} kind
 * @property {string} host always 127.0.0.1
 * @property {{stomp: number, stompSsl?: number, amqp?: number, amqpSsl?: number}} ports `amqpSsl`: RabbitMQ with `tls`
 *   only (AMQP 0-9-1 and 1.0 over TLS, SASL EXTERNAL with the client certificate)
 * @property {string} user
 * @property {string} password
 * @property {string} dataDir the instance's private directory (config, data, logs, TLS material)
 * @property {string} logFile the broker's console output
 * @property {string} name the unique instance name (RabbitMQ node name, ActiveMQ broker name)
 * @property {TlsMaterial} [tls]
 * @property {number} startupMs how long the last start took until STOMP answered CONNECTED
 * @property {() => Promise<void>} stop graceful stop of every process started, then removal of dataDir
 * @property {() => Promise<void>} restart stop, then start again on the same ports and data
 * @property {() => Promise<void>} kill SIGKILL of every process started; the data stays (restart() works after it)
 */

/** @typedef {{tls?: boolean}} StartOptions */

// ---------------------------------------------------------------------------------------------------------------
// Installation

/** Each requirement: a check and the Debian packages that meet it. */
const requirements = [
  { what: 'RabbitMQ server', check: () => isExecutable(RABBITMQ_SERVER), debs: ['rabbitmq-server'] },
  { what: 'ActiveMQ broker', check: () => fs.existsSync(ACTIVEMQ_JAR) && isExecutable(ACTIVEMQ_LAUNCHER), debs: ['activemq'] },
  { what: 'java and keytool', check: () => onPath('java') && onPath('keytool'), debs: ['activemq'] },
  { what: 'openssl', check: () => onPath('openssl'), debs: ['openssl'] },
];

/** @param {string} file */
function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** @param {string} cmd */
function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure the Debian packages the brokers need are installed. As root, installs what is missing with apt-get;
 * otherwise throws an Error whose message is the exact command to run. Never skips silently.
 * @returns {void}
 */
function ensureInstalled() {
  const missing = requirements.filter((r) => !r.check());
  if (missing.length === 0) return;
  const debs = [...new Set(missing.flatMap((r) => r.debs))];
  const line = `apt-get install -y ${debs.join(' ')}`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(line);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', ...debs],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'pipe', 'pipe'], env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (status ${r.status}):\n${tail(r.stderr || r.stdout)}`);
  }
  const still = missing.filter((r) => !r.check());
  if (still.length > 0) throw new Error(`still missing after ${line}: ${still.map((r) => r.what).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

/**
 * Free loopback TCP ports: all bound to port 0 at once (so they differ), then released.
 * @param {number} n
 * @returns {Promise<number[]>}
 */
async function freePorts(n) {
  /** @type {net.Server[]} */
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, HOST, () => resolve(undefined));
      });
    }
    return servers.map((s) => /** @type {net.AddressInfo} */ (s.address()).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve(undefined)))));
  }
}

/** @param {string} text @param {number} [lines] */
function tail(text, lines = 40) {
  return String(text || '')
    .split('\n')
    .slice(-lines)
    .join('\n');
}

/** @param {string} file */
function tailFile(file) {
  try {
    return tail(fs.readFileSync(file, 'utf8'));
  } catch {
    return '(no log)';
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {string} cmd @param {string[]} args @param {string} cwd */
function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}): ${r.error?.message ?? ''}\n${r.stderr}`);
}

/**
 * Whether something accepts a TCP connection on the loopback port.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function tcpAnswers(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.setTimeout(2000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

/** @param {number} pid */
function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (e) {
    return /** @type {NodeJS.ErrnoException} */ (e).code === 'EPERM';
  }
}

/** @param {number} pid @param {NodeJS.Signals} signal */
function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** @param {number} pid @param {number} ms */
async function waitGroupGone(pid, ms) {
  const deadline = Date.now() + ms;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal STOMP 1.2 client over a raw socket: enough for readiness probes and tests.

/**
 * @typedef {object} StompFrame
 * @property {string} command
 * @property {Record<string, string>} headers
 * @property {string} body
 */

/**
 * @typedef {object} StompConnection
 * @property {StompFrame} connected the CONNECTED frame
 * @property {(command: string, headers?: Record<string, string | number>, body?: string) => void} send write one frame
 * @property {(timeoutMs?: number) => Promise<StompFrame>} next the next frame received (MESSAGE, RECEIPT, ERROR…)
 * @property {() => Promise<void>} close DISCONNECT (with a receipt) and close the socket
 * @property {net.Socket} socket
 */

/**
 * @typedef {object} StompConnectOptions
 * @property {string} [host] default 127.0.0.1
 * @property {number} port
 * @property {string} [login]
 * @property {string} [passcode]
 * @property {string} [vhost] the CONNECT `host` header (RabbitMQ's virtual host); default `/`
 * @property {tls.ConnectionOptions} [tls] connect with TLS using these options
 * @property {number} [timeoutMs] default 10 s
 */

/** @param {string} v */
const escapeHeader = (v) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c').replace(/\r/g, '\\r');
/** @type {Record<string, string>} */
const unescapes = { n: '\n', c: ':', r: '\r', '\\': '\\' };
/** @param {string} v */
const unescapeHeader = (v) => v.replace(/\\(.)/g, (_m, /** @type {string} */ c) => unescapes[c] ?? c);

/**
 * Connects, sends CONNECT and resolves once CONNECTED arrives; rejects on ERROR, close or timeout.
 * @param {StompConnectOptions} opts
 * @returns {Promise<StompConnection>}
 */
function stompConnect(opts) {
  const host = opts.host ?? HOST;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    /** @type {net.Socket} */
    const socket = opts.tls
      ? tls.connect({ host, port: opts.port, servername: 'localhost', ...opts.tls })
      : net.connect({ host, port: opts.port });
    let buf = Buffer.alloc(0);
    /** @type {StompFrame[]} */
    const frames = [];
    /** @type {Array<{resolve: (f: StompFrame) => void, reject: (e: Error) => void}>} */
    const waiters = [];
    /** @type {Error | undefined} */
    let closedWith;
    let settled = false;
    const timer = setTimeout(
      () => fail(new Error(`STOMP CONNECT to ${host}:${opts.port}: no CONNECTED within ${timeoutMs} ms`)),
      timeoutMs,
    );

    /** @param {Error} err */
    function fail(err) {
      closedWith = closedWith ?? err;
      for (const w of waiters.splice(0)) w.reject(err);
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      }
    }

    /** @param {StompFrame} frame */
    function deliver(frame) {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        if (frame.command === 'CONNECTED') resolve(connection(frame));
        else {
          socket.destroy();
          reject(new Error(`STOMP CONNECT refused: ${frame.command} ${frame.headers.message ?? ''} ${frame.body}`.trim()));
        }
        return;
      }
      const w = waiters.shift();
      if (w) w.resolve(frame);
      else frames.push(frame);
    }

    function parse() {
      for (;;) {
        let start = 0;
        while (start < buf.length && (buf[start] === 0x0a || buf[start] === 0x0d)) start++;
        buf = buf.subarray(start);
        const headEnd = buf.indexOf('\n\n');
        if (headEnd < 0) return;
        const lines = buf.subarray(0, headEnd).toString('utf8').replace(/\r/g, '').split('\n');
        const command = lines[0];
        /** @type {Record<string, string>} */
        const headers = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          const k = unescapeHeader(line.slice(0, i));
          if (!(k in headers)) headers[k] = unescapeHeader(line.slice(i + 1));
        }
        const bodyStart = headEnd + 2;
        let bodyEnd;
        if (headers['content-length'] !== undefined) {
          bodyEnd = bodyStart + Number(headers['content-length']);
          if (buf.length < bodyEnd + 1) return;
        } else {
          bodyEnd = buf.indexOf(0, bodyStart);
          if (bodyEnd < 0) return;
        }
        const body = buf.subarray(bodyStart, bodyEnd).toString('utf8');
        buf = buf.subarray(bodyEnd + 1);
        deliver({ command, headers, body });
      }
    }

    /** @type {(command: string, headers?: Record<string, string | number>, body?: string) => void} */
    const send = (command, headers = {}, body = '') => {
      const head = Object.entries(headers)
        .map(([k, v]) => (command === 'CONNECT' ? `${k}:${v}` : `${escapeHeader(k)}:${escapeHeader(String(v))}`))
        .join('\n');
      const len = command === 'SEND' ? `content-length:${Buffer.byteLength(body)}\n` : '';
      socket.write(`${command}\n${len}${head}${head ? '\n' : ''}\n${body}\0`);
    };

    /** @param {StompFrame} connected @returns {StompConnection} */
    function connection(connected) {
      return {
        connected,
        socket,
        send,
        next(ms = 10_000) {
          const f = frames.shift();
          if (f) return Promise.resolve(f);
          if (closedWith) return Promise.reject(closedWith);
          return new Promise((res, rej) => {
            const w = {
              /** @param {StompFrame} frame */
              resolve: (frame) => {
                clearTimeout(t);
                res(frame);
              },
              /** @param {Error} e */
              reject: (e) => {
                clearTimeout(t);
                rej(e);
              },
            };
            const t = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              rej(new Error(`no STOMP frame within ${ms} ms`));
            }, ms);
            waiters.push(w);
          });
        },
        async close() {
          if (!closedWith) {
            try {
              send('DISCONNECT', { receipt: 'bye' });
              await this.next(3000);
            } catch {
              // the broker may close first
            }
          }
          socket.destroy();
        },
      };
    }

    socket.on(opts.tls ? 'secureConnect' : 'connect', () => {
      send('CONNECT', {
        'accept-version': '1.2',
        host: opts.vhost ?? '/',
        ...(opts.login !== undefined ? { login: opts.login } : {}),
        ...(opts.passcode !== undefined ? { passcode: opts.passcode } : {}),
        'heart-beat': '0,0',
      });
    });
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      try {
        parse();
      } catch (e) {
        fail(/** @type {Error} */ (e));
      }
    });
    socket.on('error', (e) => fail(e));
    socket.on('close', () => fail(new Error('STOMP connection closed')));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// TLS material

/**
 * A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN=msgbricks-client).
 * @param {string} dir
 * @returns {TlsMaterial}
 */
function makeTlsMaterial(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const days = '30';
  run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      days,
      '-subj',
      '/CN=msgbricks-test-ca',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  fs.writeFileSync(
    path.join(dir, 'client.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', CLIENT_CN],
  ]) {
    run(
      'openssl',
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
      dir,
    );
    run(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        days,
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    );
  }
  return {
    caFile: path.join(dir, 'ca.pem'),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server.key'),
    clientCertFile: path.join(dir, 'client.pem'),
    clientKeyFile: path.join(dir, 'client.key'),
  };
}

/**
 * Options for node:tls (and stompit's `ssl` connect options) that present the client certificate and trust the CA.
 * @param {Broker} broker
 * @returns {tls.ConnectionOptions}
 */
function clientTlsOptions(broker) {
  if (!broker.tls) throw new Error(`${broker.name} was started without tls`);
  return {
    ca: fs.readFileSync(broker.tls.caFile),
    cert: fs.readFileSync(broker.tls.clientCertFile),
    key: fs.readFileSync(broker.tls.clientKeyFile),
    servername: 'localhost',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Instances

/** @type {Set<Instance>} */
const live = new Set();
let counter = 0;

process.on('exit', () => {
  for (const inst of live) inst.killSync(true);
});

/**
 * @typedef {object} Spec how to run one broker kind
 * @property {'rabbitmq' | 'activemq'} kind
 * @property {(inst: Instance) => Array<{cmd: string, args: string[], env: NodeJS.ProcessEnv, main?: boolean}>} commands
 *   the processes to start, in order; the one marked `main` is the broker itself
 */

class Instance {
  /**
   * @param {Spec} spec
   * @param {string} name
   * @param {string} dir
   * @param {Broker['ports']} ports
   * @param {Record<string, number>} privatePorts
   */
  constructor(spec, name, dir, ports, privatePorts) {
    this.spec = spec;
    this.name = name;
    this.dir = dir;
    this.ports = ports;
    this.privatePorts = privatePorts;
    this.logFile = path.join(dir, 'broker.log');
    /** @type {number[]} process group ids, main broker first */
    this.groups = [];
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.main = undefined;
    /** @type {TlsMaterial | undefined} */
    this.tls = undefined;
    this.removed = false;
  }

  async start() {
    const t0 = Date.now();
    live.add(this);
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `\n==== msgbricks: starting ${this.spec.kind} ${this.name} at ${new Date().toISOString()}\n`);
    /** @type {string | undefined} */
    let exited;
    try {
      for (const c of this.spec.commands(this)) {
        const child = spawn(c.cmd, c.args, { cwd: this.dir, env: c.env, detached: true, stdio: ['ignore', fd, fd] });
        child.unref();
        if (child.pid === undefined) throw new Error(`cannot start ${c.cmd}`);
        this.groups.push(child.pid);
        if (c.main) {
          this.main = child;
          child.once('exit', (code, signal) => {
            exited = `exited (code ${code}, signal ${signal})`;
          });
        }
        child.once('error', (e) => {
          exited = `failed to start: ${e.message}`;
        });
      }
    } finally {
      fs.closeSync(fd);
    }
    const deadline = t0 + STARTUP_TIMEOUT_MS;
    /** @type {Error | undefined} */
    let last;
    /** @type {Array<[number | undefined, tls.ConnectionOptions | undefined]>} */
    const probes = [[this.ports.stomp, undefined]];
    if (this.tls && this.ports.stompSsl)
      probes.push([this.ports.stompSsl, clientTlsOptions(/** @type {Broker} */ (this.broker()))]);
    for (const [port, tlsOpts] of probes) {
      for (;;) {
        if (exited) {
          await this.killGroups();
          throw new Error(
            `${this.spec.kind} ${this.name} ${exited} before its STOMP port answered; log ${this.logFile}:\n${tailFile(this.logFile)}`,
          );
        }
        if (Date.now() > deadline) {
          await this.killGroups();
          throw new Error(
            `${this.spec.kind} ${this.name} did not answer STOMP CONNECT on ${HOST}:${port} within ${STARTUP_TIMEOUT_MS} ms` +
              ` (last: ${last?.message}); log ${this.logFile}:\n${tailFile(this.logFile)}`,
          );
        }
        try {
          const c = await stompConnect({
            port: /** @type {number} */ (port),
            login: 'guest',
            passcode: 'guest',
            tls: tlsOpts,
            timeoutMs: 5000,
          });
          await c.close();
          break;
        } catch (e) {
          last = /** @type {Error} */ (e);
          await sleep(250);
        }
      }
    }
    // The AMQP listeners: a TCP connect is enough (the STOMP probe above already proved the node is up).
    for (const port of [this.ports.amqp, this.ports.amqpSsl]) {
      if (port === undefined) continue;
      while (!(await tcpAnswers(port))) {
        if (exited || Date.now() > deadline) {
          await this.killGroups();
          throw new Error(
            `${this.spec.kind} ${this.name} ${exited ?? `did not listen on ${HOST}:${port} within ${STARTUP_TIMEOUT_MS} ms`}; log ${this.logFile}:\n${tailFile(this.logFile)}`,
          );
        }
        await sleep(250);
      }
    }
    this.startupMs = Date.now() - t0;
  }

  /** SIGTERM to the broker's group, then SIGKILL to whatever is left of every group. */
  async stopGroups() {
    const [mainGroup, ...others] = this.groups;
    if (mainGroup !== undefined) {
      signalGroup(mainGroup, 'SIGTERM');
      await waitGroupGone(mainGroup, STOP_TIMEOUT_MS);
    }
    for (const g of others) signalGroup(g, 'SIGTERM');
    await Promise.all(others.map((g) => waitGroupGone(g, 5000)));
    await this.killGroups();
  }

  async killGroups() {
    for (const g of this.groups) signalGroup(g, 'SIGKILL');
    await Promise.all(this.groups.map((g) => waitGroupGone(g, 10_000)));
    this.groups = [];
    this.main = undefined;
  }

  /** @param {boolean} remove */
  killSync(remove) {
    for (const g of this.groups) signalGroup(g, 'SIGKILL');
    this.groups = [];
    if (remove && !process.env.MSGBRICKS_KEEP_BROKER_DIRS) {
      try {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  }

  /** @returns {Broker} */
  broker() {
    const self = this;
    return {
      kind: this.spec.kind,
      host: HOST,
      ports: this.ports,
      user: 'guest',
      password: 'guest',
      dataDir: this.dir,
      logFile: this.logFile,
      name: this.name,
      ...(this.tls ? { tls: this.tls } : {}),
      get startupMs() {
        return self.startupMs ?? 0;
      },
      async stop() {
        await self.stopGroups();
        live.delete(self);
        if (!process.env.MSGBRICKS_KEEP_BROKER_DIRS) fs.rmSync(self.dir, { recursive: true, force: true });
      },
      async restart() {
        await self.stopGroups();
        await self.start();
      },
      async kill() {
        await self.killGroups();
      },
    };
  }
}

/**
 * @param {Spec} spec
 * @param {StartOptions} opts
 * @param {(dir: string, name: string, ports: Broker['ports'], priv: Record<string, number>, tlsMaterial?: TlsMaterial) => void} configure
 * @param {string[]} privateNames extra private ports to pick
 * @returns {Promise<Broker>}
 */
async function startInstance(spec, opts, configure, privateNames) {
  const name = `msgbricks-${spec.kind}-${process.pid}-${++counter}-${crypto.randomBytes(3).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const want = [
    'stomp',
    ...(spec.kind === 'rabbitmq' ? ['amqp'] : []),
    ...(opts.tls ? ['stompSsl'] : []),
    ...(opts.tls && spec.kind === 'rabbitmq' ? ['amqpSsl'] : []),
    ...privateNames,
  ];
  const picked = await freePorts(want.length);
  /** @type {Record<string, number>} */
  const all = Object.fromEntries(want.map((k, i) => [k, picked[i]]));
  /** @type {Broker['ports']} */
  const ports = { stomp: all.stomp };
  if (all.amqp) ports.amqp = all.amqp;
  if (all.stompSsl) ports.stompSsl = all.stompSsl;
  if (all.amqpSsl) ports.amqpSsl = all.amqpSsl;
  const inst = new Instance(spec, name, dir, ports, all);
  try {
    if (opts.tls) inst.tls = makeTlsMaterial(path.join(dir, 'tls'));
    configure(dir, name, ports, all, inst.tls);
    await inst.start();
  } catch (e) {
    await inst.killGroups();
    live.delete(inst);
    if (!process.env.MSGBRICKS_KEEP_BROKER_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return inst.broker();
}

// ---------------------------------------------------------------------------------------------------------------
// RabbitMQ

/** RabbitMQ's internal SHA-256 password hash: base64(salt ++ sha256(salt ++ password)). @param {string} password */
function rabbitPasswordHash(password) {
  const salt = crypto.randomBytes(4);
  const digest = crypto
    .createHash('sha256')
    .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
    .digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/** @type {Spec} */
const rabbitSpec = {
  kind: 'rabbitmq',
  commands(inst) {
    const d = inst.dir;
    const epmdPort = String(inst.privatePorts.epmd);
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: d, // private Erlang cookie: $HOME/.erlang.cookie
      ERL_EPMD_PORT: epmdPort,
      ERL_CRASH_DUMP: path.join(d, 'erl_crash.dump'),
      RABBITMQ_NODENAME: `${inst.name}@localhost`,
      RABBITMQ_NODE_IP_ADDRESS: HOST,
      RABBITMQ_NODE_PORT: String(inst.ports.amqp),
      RABBITMQ_DIST_PORT: String(inst.privatePorts.dist),
      RABBITMQ_MNESIA_BASE: path.join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(d, 'log'),
      RABBITMQ_LOGS: '-',
      RABBITMQ_CONFIG_FILE: path.join(d, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(d, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(d, 'enabled_plugins'),
      RABBITMQ_PID_FILE: path.join(d, 'rabbitmq.pid'),
      RABBITMQ_CONF_ENV_FILE: '/dev/null',
      // epmd is started by us (below) on the private port, so that stop() can stop it and nothing is shared
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-start_epmd false',
    };
    return [
      { cmd: 'epmd', args: ['-port', epmdPort, '-address', HOST], env },
      { cmd: RABBITMQ_SERVER, args: [], env, main: true },
    ];
  },
};

/**
 * Starts a private RabbitMQ node (STOMP + AMQP 1.0 plugins) in the foreground; with `tls`, also STOMP over TLS
 * (`ports.stompSsl`, ssl_cert_login) and AMQPS (`ports.amqpSsl`, SASL EXTERNAL), both requiring the client certificate.
 * @param {StartOptions} [opts]
 * @returns {Promise<Broker>}
 */
function startRabbitMQ(opts = {}) {
  return startInstance(
    rabbitSpec,
    opts,
    (dir, _name, ports, _priv, tlsMaterial) => {
      const users = [
        {
          name: 'guest',
          password_hash: rabbitPasswordHash('guest'),
          hashing_algorithm: 'rabbit_password_hashing_sha256',
          tags: ['administrator'],
        },
      ];
      if (tlsMaterial)
        users.push({ name: CLIENT_CN, password_hash: '', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: [] });
      const definitions = {
        users,
        vhosts: [{ name: '/' }],
        permissions: users.map((u) => ({ user: u.name, vhost: '/', configure: '.*', write: '.*', read: '.*' })),
      };
      fs.writeFileSync(path.join(dir, 'definitions.json'), JSON.stringify(definitions, null, 2));
      // rabbitmq_auth_mechanism_ssl provides SASL EXTERNAL (the client certificate's CN is the user).
      const plugins = ['rabbitmq_stomp', 'rabbitmq_amqp1_0', ...(tlsMaterial ? ['rabbitmq_auth_mechanism_ssl'] : [])];
      fs.writeFileSync(path.join(dir, 'enabled_plugins'), `[${plugins.join(',')}].\n`);
      const conf = [
        `listeners.tcp.default = ${HOST}:${ports.amqp}`,
        `stomp.listeners.tcp.1 = ${HOST}:${ports.stomp}`,
        `load_definitions = ${path.join(dir, 'definitions.json')}`,
        'log.console = true',
        'log.console.level = info',
        'log.file = false',
      ];
      if (tlsMaterial) {
        conf.push(
          `stomp.listeners.ssl.1 = ${HOST}:${ports.stompSsl}`,
          'stomp.ssl_cert_login = true',
          'ssl_cert_login_from = common_name',
          `ssl_options.cacertfile = ${tlsMaterial.caFile}`,
          `ssl_options.certfile = ${tlsMaterial.certFile}`,
          `ssl_options.keyfile = ${tlsMaterial.keyFile}`,
          'ssl_options.verify = verify_peer',
          'ssl_options.fail_if_no_peer_cert = true',
          // AMQP 0-9-1 and 1.0 over TLS (peer verification from ssl_options above). Listing the mechanisms replaces
          // the default list (PLAIN, AMQPLAIN); EXTERNAL is offered only on TLS connections with a client
          // certificate. The AMQP 1.0 plugin offers ANONYMOUS by itself (as guest: its default_user).
          `listeners.ssl.default = ${HOST}:${ports.amqpSsl}`,
          'auth_mechanisms.1 = PLAIN',
          'auth_mechanisms.2 = AMQPLAIN',
          'auth_mechanisms.3 = EXTERNAL',
        );
      }
      fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), `${conf.join('\n')}\n`);
    },
    ['dist', 'epmd'],
  );
}

// ---------------------------------------------------------------------------------------------------------------
// ActiveMQ

/** @param {string} s */
const xmlAttr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** @type {Spec} */
const activemqSpec = {
  kind: 'activemq',
  commands(inst) {
    const d = inst.dir;
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: d };
    const args = [
      '-Xms64m',
      '-Xmx256m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Dorg.apache.activemq.UseDedicatedTaskRunner=false',
      '--add-reads=java.xml=java.logging',
      ...[
        'java.base/java.security',
        'java.base/java.net',
        'java.base/java.lang',
        'java.base/java.util',
        'java.naming/javax.naming.spi',
        'java.rmi/sun.rmi.transport.tcp',
        'java.base/java.util.concurrent',
        'java.base/java.util.concurrent.atomic',
      ].flatMap((p) => ['--add-opens', `${p}=ALL-UNNAMED`]),
      '-Dactivemq.home=/usr/share/activemq',
      `-Dactivemq.base=${d}`,
      `-Dactivemq.conf=${path.join(d, 'conf')}`,
      `-Dactivemq.data=${path.join(d, 'data')}`,
      `-Djava.io.tmpdir=${path.join(d, 'tmp')}`,
      `-Dlog4j.configuration=file:${path.join(d, 'conf', 'log4j.properties')}`,
      '-jar',
      ACTIVEMQ_JAR,
      'start',
      `xbean:file:${path.join(d, 'conf', 'activemq.xml')}`,
    ];
    return [{ cmd: 'java', args, env, main: true }];
  },
};

/**
 * Starts a private ActiveMQ broker (STOMP, and STOMP+SSL with client authentication when `tls`) in the foreground.
 * @param {StartOptions} [opts]
 * @returns {Promise<Broker>}
 */
function startActiveMQ(opts = {}) {
  return startInstance(
    activemqSpec,
    opts,
    (dir, name, ports, priv, tlsMaterial) => {
      for (const sub of ['conf', 'data', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
      const data = path.join(dir, 'data');
      let ssl = '';
      let sslConnector = '';
      if (tlsMaterial) {
        const tlsDir = path.dirname(tlsMaterial.caFile);
        const ks = path.join(tlsDir, 'broker.p12');
        const ts = path.join(tlsDir, 'trust.p12');
        run(
          'openssl',
          [
            'pkcs12',
            '-export',
            '-in',
            tlsMaterial.certFile,
            '-inkey',
            tlsMaterial.keyFile,
            '-name',
            'broker',
            '-out',
            ks,
            '-passout',
            `pass:${KEYSTORE_PASSWORD}`,
          ],
          tlsDir,
        );
        run(
          'keytool',
          [
            '-importcert',
            '-noprompt',
            '-alias',
            'ca',
            '-file',
            tlsMaterial.caFile,
            '-keystore',
            ts,
            '-storetype',
            'PKCS12',
            '-storepass',
            KEYSTORE_PASSWORD,
          ],
          tlsDir,
        );
        ssl =
          `<sslContext><sslContext keyStore="file:${xmlAttr(ks)}" keyStorePassword="${KEYSTORE_PASSWORD}" keyStoreType="pkcs12"` +
          ` trustStore="file:${xmlAttr(ts)}" trustStorePassword="${KEYSTORE_PASSWORD}" trustStoreType="pkcs12"/></sslContext>`;
        sslConnector = `<transportConnector name="stomp+ssl" uri="stomp+ssl://${HOST}:${ports.stompSsl}?needClientAuth=true&amp;transport.hbGracePeriodMultiplier=1.5"/>`;
      }
      const xml = `<beans xmlns="http://www.springframework.org/schema/beans" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="${name}" dataDirectory="${xmlAttr(data)}"
          schedulerSupport="false" advisorySupport="false" useShutdownHook="true">
    <persistenceAdapter><kahaDB directory="${xmlAttr(path.join(data, 'kahadb'))}"/></persistenceAdapter>
    ${ssl}
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://${HOST}:${priv.openwire}"/>
      <transportConnector name="stomp" uri="stomp+nio://${HOST}:${ports.stomp}?transport.hbGracePeriodMultiplier=1.5"/>
      ${sslConnector}
    </transportConnectors>
  </broker>
</beans>
`;
      fs.writeFileSync(path.join(dir, 'conf', 'activemq.xml'), xml);
      fs.writeFileSync(
        path.join(dir, 'conf', 'log4j.properties'),
        [
          'log4j.rootLogger=INFO, out',
          'log4j.appender.out=org.apache.log4j.ConsoleAppender',
          'log4j.appender.out.layout=org.apache.log4j.PatternLayout',
          'log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n',
          '',
        ].join('\n'),
      );
    },
    ['openwire'],
  );
}

module.exports = {
  requirements,
  ensureInstalled,
  startRabbitMQ,
  startActiveMQ,
  stompConnect,
  clientTlsOptions,
  freePorts,
  makeTlsMaterial,
  CLIENT_CN,
};
