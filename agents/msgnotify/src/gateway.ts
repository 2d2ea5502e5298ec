import * as fs from 'node:fs';
import { errnoOf, errorOf, UsageError } from '@msgbricks/errors';
import { CacheError, Gateway, type GatewayEvent, StompBackend } from '@msgbricks/notify';
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

export async function startGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  const backend = new StompBackend({
    uri: config.broker.uri,
    ...(config.broker.user !== undefined ? { user: config.broker.user } : {}),
    ...(config.broker.pass !== undefined ? { password: config.broker.pass } : {}),
    vhost: config.broker.vhost,
    exchange: config.broker.exchange,
    node: config.node,
    onEvent: (e) => {
      if (e.type === 'connected') log.info(`broker session with ${e.server} (${e.brokerType}, STOMP ${e.version})`);
      else if (e.type === 'lost') log.warn(`broker session lost: ${e.error.message}`);
      else if (e.type === 'connect-failed') log.warn(`cannot connect to ${e.server}: ${e.error.message}`);
      else if (e.type === 'reconnected') log.info(`broker session back with ${e.server}`);
    },
  });
  return Gateway.start({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: { cert: readPem(config.tls.cert, 'tls.cert'), key: readPem(config.tls.key, 'tls.key') } } : {}),
    cacheDir: config.cache,
    backend,
    publish: config.publish,
    ...(config.subscribeTokens !== undefined ? { subscribeTokens: config.subscribeTokens } : {}),
    rateLimit: config.rateLimit,
    maxBodyBytes: config.maxBodyBytes,
    maxSubscribers: config.maxSubscribers,
    heartbeatMs: config.heartbeatSeconds * 1000,
    hub: { maxBufferedBytes: config.maxBufferedBytes, stallTimeoutMs: config.stallTimeoutSeconds * 1000 },
    onEvent: (e) => {
      const [level, text] = describe(e);
      log.log(level, text);
    },
  });
}

/** The command: 0 after a clean stop (SIGTERM, SIGINT), 2 for bad usage or configuration, 1 for a failure. */
export async function runGateway(argv: readonly string[]): Promise<number> {
  const log = new Logger('msgnotify-gateway');
  try {
    const args = parseArgs(argv);
    const config = loadConfig(args.config);
    log.level = config.logLevel;
    if (args.check) {
      log.out(`${args.config ?? 'configuration'}: ok`);
      return 0;
    }
    const gateway = await startGateway(config, log);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
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
  }
}
