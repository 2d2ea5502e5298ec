// Private, throwaway message brokers for tests, benchmarks and the demo: RabbitMQ 3.10 (Debian `rabbitmq-server`,
// with the STOMP and AMQP 1.0 plugins) and ActiveMQ 5.17 (Debian `activemq`, STOMP), each started in the foreground
// as a child process of the caller, on free loopback ports, with everything it writes in its own temporary
// directory. See docs/brokers.md.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import { ACTIVEMQ_JAR, RABBITMQ_SERVER, brokers as requirements, unmet } from '../requirements';
import { stompConnect } from './stomp';
import { CLIENT_CN, clientTlsOptions, makeTlsMaterial, type TlsMaterial } from './tls';
import { freePorts, HOST, run, sleep, tail, tailFile, tcpAnswers } from './util';

const STARTUP_TIMEOUT_MS = Number(process.env.MSGBRICKS_BROKER_TIMEOUT_MS) || 90_000;
const STOP_TIMEOUT_MS = 30_000;
const KEYSTORE_PASSWORD = 'msgbricks';

export type BrokerKind = 'rabbitmq' | 'activemq';

export interface BrokerPorts {
  stomp: number;
  stompSsl?: number;
  amqp?: number;
  /** RabbitMQ with `tls` only (AMQP 0-9-1 and 1.0 over TLS, SASL EXTERNAL with the client certificate). */
  amqpSsl?: number;
}

export interface Broker {
  kind: BrokerKind;
  /** Always 127.0.0.1. */
  host: string;
  ports: BrokerPorts;
  user: string;
  password: string;
  /** The instance's private directory (config, data, logs, TLS material). */
  dataDir: string;
  /** The broker's console output. */
  logFile: string;
  /** The unique instance name (RabbitMQ node name, ActiveMQ broker name). */
  name: string;
  tls?: TlsMaterial;
  /** How long the last start took until STOMP answered CONNECTED. */
  readonly startupMs: number;
  /** Graceful stop of every process started, then removal of dataDir. */
  stop(): Promise<void>;
  /** Stop, then start again on the same ports and data. */
  restart(): Promise<void>;
  /** SIGKILL of every process started; the data stays (restart() works after it). */
  kill(): Promise<void>;
}

export interface StartOptions {
  tls?: boolean;
  /**
   * RabbitMQ only: durable direct exchanges declared at start (its STOMP plugin cannot declare one, and a SEND to a
   * missing exchange is an ERROR), e.g. the notify gateway's `repository.activity`.
   */
  exchanges?: readonly string[];
}

/** A broker started with `tls`: its TLS material and its STOMP-over-TLS port. */
export interface TlsBroker extends Broker {
  tls: TlsMaterial;
  ports: BrokerPorts & { stompSsl: number };
}

// ---------------------------------------------------------------------------------------------------------------
// Installation

/**
 * Makes sure the Debian packages the brokers need are installed (the list is requirements.js's, shared with
 * scripts/prereqs.js). As root, installs what is missing with apt-get; otherwise throws an Error whose message is the
 * exact command to run. Never skips silently.
 */
export function ensureInstalled(): void {
  const { missing, debs } = unmet(requirements);
  if (missing.length === 0) return;
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
  const still = unmet(missing).missing;
  if (still.length > 0) throw new Error(`still missing after ${line}: ${still.map((r) => r.what).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Process groups

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

async function waitGroupGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Instances

const live = new Set<Instance>();
let counter = 0;

process.on('exit', () => {
  for (const inst of live) inst.killSync(true);
});

/** How to run one broker kind. */
interface Spec {
  kind: BrokerKind;
  /** The processes to start, in order; the one marked `main` is the broker itself. */
  commands(inst: Instance): { cmd: string; args: string[]; env: NodeJS.ProcessEnv; main?: boolean }[];
}

class Instance {
  readonly logFile: string;
  /** Process group ids, main broker first. */
  groups: number[] = [];
  main: ChildProcess | undefined;
  tls: TlsMaterial | undefined;
  startupMs: number | undefined;

  constructor(
    readonly spec: Spec,
    readonly name: string,
    readonly dir: string,
    readonly ports: BrokerPorts,
    readonly privatePorts: Record<string, number>,
  ) {
    this.logFile = path.join(dir, 'broker.log');
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    live.add(this);
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `\n==== msgbricks: starting ${this.spec.kind} ${this.name} at ${new Date().toISOString()}\n`);
    let exited: string | undefined;
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
    let last: Error | undefined;
    const probes: [number, tls.ConnectionOptions | undefined][] = [[this.ports.stomp, undefined]];
    if (this.tls && this.ports.stompSsl) probes.push([this.ports.stompSsl, clientTlsOptions(this)]);
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
            port,
            login: 'guest',
            passcode: 'guest',
            tls: tlsOpts,
            timeoutMs: 5000,
          });
          await c.close();
          break;
        } catch (e) {
          last = e as Error;
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
  async stopGroups(): Promise<void> {
    const [mainGroup, ...others] = this.groups;
    if (mainGroup !== undefined) {
      signalGroup(mainGroup, 'SIGTERM');
      await waitGroupGone(mainGroup, STOP_TIMEOUT_MS);
    }
    for (const g of others) signalGroup(g, 'SIGTERM');
    await Promise.all(others.map((g) => waitGroupGone(g, 5000)));
    await this.killGroups();
  }

  async killGroups(): Promise<void> {
    for (const g of this.groups) signalGroup(g, 'SIGKILL');
    await Promise.all(this.groups.map((g) => waitGroupGone(g, 10_000)));
    this.groups = [];
    this.main = undefined;
  }

  killSync(remove: boolean): void {
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

  broker(): Broker {
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

type Configure = (
  dir: string,
  name: string,
  ports: BrokerPorts,
  priv: Record<string, number>,
  tlsMaterial: TlsMaterial | undefined,
) => void;

/** A start that failed because a picked port was taken meanwhile (by any process: the ports are ephemeral ones). */
const PORT_TAKEN = /dist_port_already_used|eaddrinuse|address already in use/i;

/**
 * `privateNames`: extra private ports to pick.
 * RACE: a port is free when picked and bound by the broker seconds later; anything on the host may take it between
 * (an outgoing connection gets an ephemeral port too). Such a start fails in the broker's log, and is retried with
 * new ports and a new directory; any other failure is thrown at once.
 */
async function startInstance(spec: Spec, opts: StartOptions, configure: Configure, privateNames: string[]): Promise<Broker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startInstanceOnce(spec, opts, configure, privateNames);
    } catch (e) {
      if (attempt >= 3 || !PORT_TAKEN.test(e instanceof Error ? e.message : String(e))) throw e;
    }
  }
}

async function startInstanceOnce(spec: Spec, opts: StartOptions, configure: Configure, privateNames: string[]): Promise<Broker> {
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
  const all: Record<string, number> = Object.fromEntries(want.map((k, i) => [k, picked[i] as number]));
  const ports: BrokerPorts = { stomp: all.stomp as number };
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

/** RabbitMQ's internal SHA-256 password hash: base64(salt ++ sha256(salt ++ password)). */
function rabbitPasswordHash(password: string): string {
  const salt = crypto.randomBytes(4);
  const digest = crypto
    .createHash('sha256')
    .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
    .digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

const rabbitSpec: Spec = {
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
 */
export function startRabbitMQ(opts: StartOptions & { tls: true }): Promise<TlsBroker>;
export function startRabbitMQ(opts?: StartOptions): Promise<Broker>;
export function startRabbitMQ(opts: StartOptions = {}): Promise<Broker> {
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
        exchanges: (opts.exchanges ?? []).map((name) => ({
          name,
          vhost: '/',
          type: 'direct',
          durable: true,
          auto_delete: false,
          internal: false,
          arguments: {},
        })),
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

const xmlAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

const activemqSpec: Spec = {
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
 */
export function startActiveMQ(opts: StartOptions & { tls: true }): Promise<TlsBroker>;
export function startActiveMQ(opts?: StartOptions): Promise<Broker>;
export function startActiveMQ(opts: StartOptions = {}): Promise<Broker> {
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
