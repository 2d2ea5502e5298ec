/**
 * What the command makes of the spools' persistent faults (a spool that cannot be written or listed: EACCES, EPERM,
 * EROFS, EIO, or full): one log line per state change (not per retry), the metrics (Counters.spoolFault), and, with
 * --timeout-spool-fault, giving up once a fault has lasted that long.
 */
import type { SpoolFaultEvent } from '@msgbricks/agent';
import { SpoolFaultError } from './errors';
import type { Logger } from './logger';
import type { Counters, SpoolSide } from './metrics';

/** `EACCES: permission denied` out of a FileSystemError's message (`cannot open(PATH): EACCES: permission denied`). */
function errnoText(errno: string, error: Error): string {
  const at = error.message.indexOf(`${errno}: `);
  return at < 0 ? errno : error.message.slice(at);
}

interface Episode {
  errno: string;
  timer: NodeJS.Timeout | undefined;
}

export class SpoolFaultWatch {
  /** Aborted when the command gives up: the writes waiting for a spool then fail at once (their messages go back). */
  readonly giveUp = new AbortController();
  /** The fault the command gave up on. */
  failure: SpoolFaultError | undefined;
  private readonly episodes = new Map<string, Episode>();

  constructor(
    private readonly logger: Logger,
    private readonly counters: Counters | undefined,
    /** --timeout-spool-fault, seconds; undefined: wait for ever. */
    private readonly timeout: number | undefined,
    /** Called once, when giving up (the command stops). */
    private readonly onGiveUp: (err: SpoolFaultError) => void,
  ) {}

  /** The event handler of the spool `queue` on `side` (`what` names it in the log: "outgoing queue"...). */
  listener(queue: string, side: SpoolSide, what: string): (event: SpoolFaultEvent) => void {
    return (e) => this.event(queue, side, what, e);
  }

  private event(queue: string, side: SpoolSide, what: string, e: SpoolFaultEvent): void {
    const key = `${side} ${queue}`;
    const episode = this.episodes.get(key);
    if (e.type === 'resumed') {
      if (episode === undefined) return;
      clearTimeout(episode.timer);
      this.episodes.delete(key);
      this.counters?.spoolFault(queue, side, undefined);
      if (FULL.has(episode.errno)) this.logger.info({ queue, side, waitedMs: e.waitedMs }, `${what}: space again, writing`);
      else this.logger.info({ queue, side, waitedMs: e.waitedMs }, `${what}: spool usable again, going on`);
      return;
    }
    this.counters?.spoolFault(queue, side, e.errno);
    if (episode !== undefined && episode.errno === e.errno) {
      this.logger.debug({ queue, side, attempt: e.attempt, retryInMs: e.retryInMs }, `${what}: still ${e.type}`);
      return;
    }
    if (episode === undefined) {
      const timer =
        this.timeout === undefined
          ? undefined
          : setTimeout(() => this.abandon(queue, side, e.error), this.timeout * 1000).unref();
      this.episodes.set(key, { errno: e.errno, timer });
    } else episode.errno = e.errno;
    if (e.type === 'full') {
      this.logger.warn(
        { queue, side, error: e.error.message },
        `${what}: file system full, the messages wait (unacked) and the write is retried until there is room`,
      );
    } else {
      this.logger.warn(
        { queue, side, err: e.error.message },
        `${what}: spool unusable (${errnoText(e.errno, e.error)}): the ${side} side waits and retries with backoff`,
      );
    }
  }

  private abandon(queue: string, side: SpoolSide, cause: Error): void {
    if (this.failure !== undefined || this.timeout === undefined) return;
    this.failure = new SpoolFaultError(queue, side, this.timeout, { cause });
    this.giveUp.abort(this.failure);
    this.onGiveUp(this.failure);
  }

  /** Stops the give-up timers (the run is over). */
  close(): void {
    for (const e of this.episodes.values()) clearTimeout(e.timer);
  }
}

const FULL = new Set(['ENOSPC', 'EDQUOT']);
