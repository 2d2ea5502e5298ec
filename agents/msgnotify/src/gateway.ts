import cluster, { type Worker } from 'node:cluster';
import * as fs from 'node:fs';
import { errnoOf, errorOf, UsageError } from '@msgbricks/errors';
import {
  CacheError,
  type Channel,
  Gateway,
  type GatewayEvent,
  PublicKeyError,
  Relay,
  RelayBackend,
  type RelayEvent,
  readMasterKeys,
  StompBackend,
  type VerifySpec,
} from '@msgbricks/notify';
import { ConfigError } from '@msgbricks/transfer-cli';
import { type GatewayConfig, loadConfig } from './config';
import { Logger } from './logger';

const USAGE = `usage: msgnotify-gateway [--config FILE] [--check-config]

The notify gateway (docs/notify.md). FILE is JSON or YAML (cvmfs-notify's config.json keys port and log_level
work as they are); the CVMFS_NOTIFY_* environment variables override it. --check-config validates and exits.`;

function parseArgs(argv: readonly string[]): { config?: string; check: boolean } {
  let config: string | undefined;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') throw new UsageError(USAGE, { exitCode: 0 });
    if (a === '--check-config') check = true;
    else if (a === '--config' || a === '-f') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${a} needs a file\n${USAGE}`);
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else throw new UsageError(`unexpected argument ${JSON.stringify(a)}\n${USAGE}`);
  }
  return { ...(config !== undefined ? { config } : {}), check };
}

function describe(e: GatewayEvent): [level: 'debug' | 'info' | 'warn' | 'error', text: string] {
  switch (e.type) {
    case 'listening':
      return ['info', `listening on ${e.url}`];
    case 'publish':
      return ['info', `published ${e.repository} revision ${e.revision} for ${e.publisher}`];
    case 'received':
      return ['debug', `received ${e.repository} revision ${e.revision}: ${e.outcome}`];
    case 'refused':
      return ['info', `refused a request: ${e.status} ${e.reason}${e.detail !== undefined ? ` (${e.detail})` : ''}`];
    case 'invalid-from-broker':
      return ['warn', `dropped an invalid message from the broker: ${e.error.message}`];
    case 'error':
      return ['error', `request failed: ${e.error.message}`];
  }
}

function readPem(file: string, key: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ where: 'configuration', key, message: `cannot read ${file} (open: ${errnoOf(err)})` }], {
      cause: err,
    });
  }
}

/** The master keys of `verify`, read (a key that went away since the configuration was checked is a config error). */
async function verifySpecs(config: GatewayConfig): Promise<Record<string, VerifySpec>> {
  const specs: Record<string, VerifySpec> = {};
  for (const [repo, v] of Object.entries(config.verify)) {
    try {
      specs[repo] = { masterKeys: await readMasterKeys(v.keys), locations: v.locations };
    } catch (err) {
      if (!(err instanceof PublicKeyError)) throw err;
      throw new ConfigError([{ where: 'configuration', key: `verify.${repo}.keys`, message: err.message }], { cause: err });
    }
  }
  return specs;
}

/** Set in the environment of a cluster's workers: the worker's slot, 1 to `workers`. */
const WORKER_ENV = 'MSGNOTIFY_WORKER';

function stompBackend(config: GatewayConfig, log: Logger): StompBackend {
  return new StompBackend({
    uri: config.broker.uri,
    ...(config.broker.user !== undefined ? { user: config.broker.user } : {}),
    ...(config.broker.pass !== undefined ? { password: config.broker.pass } : {}),
    vhost: config.broker.vhost,
    exchange: config.broker.exchange,
    node: config.node,
    repositories: config.broker.repositories,
    onEvent: (e) => {
      if (e.type === 'connected') log.info(`broker session with ${e.server} (${e.brokerType}, STOMP ${e.version})`);
      else if (e.type === 'lost') log.warn(`broker session lost: ${e.error.message}`);
      else if (e.type === 'connect-failed') log.warn(`cannot connect to ${e.server}: ${e.error.message}`);
      else if (e.type === 'reconnected') log.info(`broker session back with ${e.server}`);
    },
  });
}

function logRelayed(log: Logger, e: RelayEvent): void {
  if (e.type === 'received') log.debug(`received ${e.repository} revision ${e.revision}: ${e.outcome}`);
  else log.warn(`dropped an invalid message from the broker: ${e.error.message}`);
}

/**
 * The gateway of one process (`worker` unset), or of a cluster worker: its broker and persistent cache are then the
 * primary's (Relay), reached through `worker`.
 */
export async function startGateway(config: GatewayConfig, log: Logger, worker?: RelayBackend): Promise<Gateway> {
  const gateway = await Gateway.start({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: { cert: readPem(config.tls.cert, 'tls.cert'), key: readPem(config.tls.key, 'tls.key') } } : {}),
    ...(worker === undefined ? { cacheDir: config.cache } : { clusterStats: (own) => worker.clusterStats(own) }),
    backend: worker ?? stompBackend(config, log),
    publish: config.publish,
    verify: await verifySpecs(config),
    ...(config.subscribeTokens !== undefined ? { subscribeTokens: config.subscribeTokens } : {}),
    rateLimit: config.rateLimit,
    maxBodyBytes: config.maxBodyBytes,
    // Round-robin spreads subscribers evenly: each worker takes its share of the gateway's bound.
    maxSubscribers: worker === undefined ? config.maxSubscribers : Math.ceil(config.maxSubscribers / config.workers),
    heartbeatMs: config.heartbeatSeconds * 1000,
    hub: { maxBufferedBytes: config.maxBufferedBytes, stallTimeoutMs: config.stallTimeoutSeconds * 1000 },
    onEvent: (e) => {
      const [level, text] = describe(e);
      // A worker's `received` are the primary's relays: the primary logs what came from the broker.
      if (worker === undefined || e.type !== 'received') log.log(level, text);
    },
  });
  if (worker !== undefined) worker.ownStats = () => gateway.stats();
  return gateway;
}

function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

/**
 * The primary of `workers: N`: the broker session and the cache (Relay), N workers sharing the port, each one
 * restarted a second after it dies. A worker that dies before it ever listened (the port taken, say) stops the
 * whole: restarting it would fail the same way for ever. Resolves with the exit code.
 */
async function runPrimary(config: GatewayConfig, log: Logger): Promise<number> {
  const relay = await Relay.start({
    cacheDir: config.cache,
    backend: stompBackend(config, log),
    onEvent: (e) => logRelayed(log, e),
  });
  const workers = new Map<number, Worker>();
  let stopping = false;
  let failed = false;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const fork = (slot: number) => {
    const worker = cluster.fork({ [WORKER_ENV]: String(slot) });
    let listened = false;
    relay.attach(worker as unknown as Channel);
    workers.set(slot, worker);
    worker.once('listening', () => {
      listened = true;
    });
    worker.once('exit', (code, signal) => {
      relay.detach(worker as unknown as Channel);
      workers.delete(slot);
      if (stopping) return;
      if (!listened) {
        log.error(`worker ${slot} exited (${signal ?? code}) before it listened: stopping`);
        failed = true;
        stop();
        return;
      }
      log.error(`worker ${slot} (pid ${worker.process.pid}) exited (${signal ?? code}): restarting it in 1 s`);
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, 1000).unref();
    });
  };
  for (let slot = 1; slot <= config.workers; slot++) fork(slot);
  log.info(`${config.workers} workers on port ${config.port}`);
  await Promise.race([stopSignal(), stopped]);
  stopping = true;
  log.info('stopping');
  const exits = [...workers.values()].map(
    (w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))),
  );
  for (const w of workers.values()) w.process.kill('SIGTERM');
  await Promise.all(exits);
  await relay.close();
  return failed ? 1 : 0;
}

/** A cluster worker: the gateway over the primary's relay, until told to stop or the primary is gone. */
async function runWorker(config: GatewayConfig, log: Logger): Promise<number> {
  const gateway = await startGateway(config, log, new RelayBackend(process as unknown as Channel));
  await Promise.race([stopSignal(), new Promise((resolve) => process.once('disconnect', resolve))]);
  await gateway.close();
  return 0;
}

/** The command: 0 after a clean stop (SIGTERM, SIGINT), 2 for bad usage or configuration, 1 for a failure. */
export async function runGateway(argv: readonly string[]): Promise<number> {
  const slot = cluster.isWorker ? process.env[WORKER_ENV] : undefined;
  const log = new Logger(slot === undefined ? 'msgnotify-gateway' : `msgnotify-gateway/w${slot}`);
  try {
    const args = parseArgs(argv);
    const config = loadConfig(args.config);
    log.level = config.logLevel;
    if (args.check) {
      log.out(`${args.config ?? 'configuration'}: ok`);
      return 0;
    }
    if (config.workers > 1 && cluster.isPrimary) return await runPrimary(config, log);
    if (cluster.isWorker && process.env[WORKER_ENV] !== undefined) return await runWorker(config, log);
    const gateway = await startGateway(config, log);
    await stopSignal();
    log.info('stopping');
    await gateway.close();
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      (err.exitCode === 0 ? process.stdout : process.stderr).write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) process.stderr.write(`msgnotify-gateway: ${line}\n`);
      return 2;
    }
    if (err instanceof CacheError || errnoOf(err) === 'EADDRINUSE' || errnoOf(err) === 'EACCES') {
      log.error(errorOf(err).message);
      return 1;
    }
    log.error(`unexpected failure: ${errorOf(err).message}`);
    if (process.env.MSGNOTIFY_DEBUG === '1') process.stderr.write(`${errorOf(err).stack}\n`);
    return 1;
  } finally {
    // A cluster worker's IPC channel would keep it alive (after a failed start too: its primary then stops). Through
    // the worker, not process.disconnect(): cluster takes that for its primary gone and exits 0 at once, losing the code.
    if (cluster.isWorker && process.connected) cluster.worker?.disconnect();
  }
}
