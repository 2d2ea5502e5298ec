/**
 * The running supervision tree. Services run as children of this process are watched through their exit event, so
 * a death is seen at once; simplevisor's LSB services are polled every `interval`. A failure goes to the parent
 * supervisor, which applies its strategy, counts it against its intensity and, past it, stops its children in
 * reverse start order and fails to its own parent. The root, when it fails, holds down and starts again.
 *
 * Each supervisor handles one failure at a time (a promise chain): a strategy that stops and starts several
 * children is never interleaved with another one on the same children.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { Stream } from 'node:stream';
import { errnoOf } from '@msgbricks/errors';
import type { EntrySpec, GlobalSpec, LsbServiceSpec, ProcessServiceSpec, SupervisionConfig, SupervisorSpec } from './config';
import { ControlError, StartError } from './errors';
import { Backoff, IntensityTracker } from './intensity';
import { RotatingLog } from './logs';
import { alive, envWithPath, findProcesses, killGroup, runCommand } from './proc';

export type State = 'stopped' | 'starting' | 'running' | 'stopping' | 'backoff' | 'exited' | 'failed' | 'held';
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type Log = (level: LogLevel, message: string) => void;

/** One entry's state, as `status` and `/healthz` show it. */
export interface NodeStatus {
  readonly path: string;
  readonly type: 'supervisor' | 'service';
  readonly state: State;
  readonly expected: 'running' | 'stopped';
  /** The state is the expected one. */
  readonly ok: boolean;
  readonly pid?: number;
  readonly restarts: number;
  /** When the current state began (ms since the epoch). */
  readonly since: number;
  readonly lastExit?: string;
  readonly children?: readonly NodeStatus[];
}

/** What the tree tells its observers (metrics, logs): `restart` (path), `exit` (path, reason), `failed` (path), `held` (ms). */
export interface SupervisionEvents {
  restart: [path: string];
  exit: [path: string, reason: string];
  failed: [path: string];
  ready: [path: string];
  held: [ms: number];
  'gave-up': [];
}

/** Where a child's output goes when it is captured but there is no log directory. */
export type OutputSink = (path: string, source: 'out' | 'err', chunk: Buffer) => void;

interface Context {
  readonly global: GlobalSpec;
  readonly log: Log;
  readonly output: OutputSink;
  readonly events: EventEmitter<SupervisionEvents>;
}

/** Backoff waits that a stop cuts short: a cancelled wait resolves at once, so the queue behind it never stalls. */
class Waits {
  private readonly pending = new Map<NodeJS.Timeout, () => void>();

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(t);
        resolve();
      }, ms);
      this.pending.set(t, resolve);
    });
  }

  cancel(): void {
    for (const [t, resolve] of this.pending) {
      clearTimeout(t);
      resolve();
    }
    this.pending.clear();
  }
}

abstract class Node {
  state: State = 'stopped';
  since = Date.now();
  restarts = 0;
  expectedRunning: boolean;
  parent: SupervisorNode | undefined;

  constructor(
    readonly spec: EntrySpec,
    protected readonly ctx: Context,
  ) {
    this.expectedRunning = spec.expected !== 'stopped';
  }

  get path(): string {
    return this.spec.path;
  }

  protected setState(state: State): void {
    if (this.state !== state) this.since = Date.now();
    this.state = state;
  }

  /** Starts and resolves once ready (dependants may start); a StartError otherwise. */
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract snapshot(): NodeStatus;
  /** Lets go of running children without stopping them (stop_supervisor). */
  abstract detach(): void;

  protected ok(): boolean {
    return this.expectedRunning ? this.state === 'running' : this.state === 'stopped' || this.state === 'exited';
  }

  protected base(): Omit<NodeStatus, 'type'> {
    return {
      path: this.path,
      state: this.state,
      expected: this.expectedRunning ? 'running' : 'stopped',
      ok: this.ok(),
      restarts: this.restarts,
      since: this.since,
    };
  }

  /** Tells the parent this child failed, unless a stop is what made it end. */
  protected failed(reason: string): void {
    this.ctx.events.emit('exit', this.path, reason);
    this.parent?.childFailed(this, reason);
  }
}

class ProcessNode extends Node {
  declare readonly spec: ProcessServiceSpec;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private readyAt = 0;
  private lastExit: string | undefined;
  private readonly backoff: Backoff;
  private logFile: RotatingLog | undefined;

  constructor(spec: ProcessServiceSpec, ctx: Context) {
    super(spec, ctx);
    this.backoff = new Backoff(spec.backoffMin, spec.backoffMax);
  }

  resetBackoff(): void {
    this.backoff.reset();
  }

  /** How long to wait before the next start after a failure. */
  backoffDelay(): number {
    return this.backoff.next(this.readyAt === 0 ? 0 : Date.now() - this.readyAt);
  }

  /**
   * `output = syslog`: util-linux `logger -t LOGNAME/PATH` reads the child's stdout and stderr straight from its
   * pipe (the supervisor is not in the way), one syslog message per line; it ends with the child.
   */
  private syslog(): NodeJS.WritableStream {
    const g = this.ctx.global;
    const args = ['-t', `${g.logname}/${this.path}`, ...(g.syslogSocket === undefined ? [] : ['-u', g.syslogSocket])];
    const logger = spawn('logger', args, { stdio: ['pipe', 'ignore', 'ignore'] });
    logger.on('error', (err) => this.ctx.log('error', `${this.path}: cannot run logger: ${errnoOf(err) ?? err.message}`));
    return logger.stdin;
  }

  private stdio(sink: NodeJS.WritableStream | undefined): StdioOptions {
    const out =
      sink !== undefined
        ? (sink as unknown as Stream)
        : this.spec.output === 'inherit'
          ? 'inherit'
          : this.spec.output === 'null'
            ? 'ignore'
            : 'pipe';
    const stdio: StdioOptions = ['ignore', out, out];
    if (this.spec.readiness.kind === 'fd') {
      while (stdio.length < this.spec.readiness.fd) stdio.push('ignore');
      stdio.push('pipe');
    }
    return stdio;
  }

  private openLog(): void {
    if (this.spec.output !== 'log' || this.logFile !== undefined) return;
    const dir = this.ctx.global.logDir;
    if (dir === undefined) return;
    this.logFile = new RotatingLog(path.join(dir, `${this.path.replaceAll('/', '.')}.log`), {
      maxSize: this.ctx.global.logMaxSize,
      keep: this.ctx.global.logKeep,
    });
  }

  start(): Promise<void> {
    if (this.child !== undefined) return Promise.resolve();
    this.setState('starting');
    // A start that fails before readiness counts as a run of no time (backoff grows), however long the last run was.
    this.readyAt = 0;
    const [cmd, ...args] = this.spec.argv as [string, ...string[]];
    try {
      this.openLog();
    } catch (err) {
      return Promise.reject(new StartError(this.path, (err as Error).message, { cause: err }));
    }
    let child: ChildProcess;
    const sink = this.spec.output === 'syslog' ? this.syslog() : undefined;
    try {
      child = spawn(cmd, args, {
        cwd: this.spec.cwd,
        env: envWithPath(this.spec.searchPath, this.spec.env),
        // A process group of its own: a stop reaches the grandchildren a shell script starts.
        detached: true,
        stdio: this.stdio(sink),
      });
      // The child holds the pipe to logger now; our end closes so that logger ends with it.
      (sink as (NodeJS.WritableStream & { destroy(): void }) | undefined)?.destroy();
    } catch (err) {
      this.setState('exited');
      return Promise.reject(new StartError(this.path, `cannot spawn ${cmd}: ${errnoOf(err) ?? String(err)}`, { cause: err }));
    }
    this.child = child;
    const log = this.logFile;
    if (this.spec.output === 'log') {
      // Without a log directory the lines go to the command's `output` (its own stdout and stderr: the journal).
      const sink = (source: 'out' | 'err') => (chunk: Buffer) => {
        if (log !== undefined) log.write(source, chunk);
        else this.ctx.output(this.path, source, chunk);
      };
      child.stdout?.on('data', sink('out'));
      child.stderr?.on('data', sink('err'));
    }
    return new Promise<void>((resolve, reject) => {
      let starting = true;
      const failStart = (message: string, cause?: unknown) => {
        if (!starting) return;
        starting = false;
        reject(new StartError(this.path, message, cause === undefined ? undefined : { cause }));
      };
      const becameReady = () => {
        if (!starting || this.child !== child) return;
        starting = false;
        this.readyAt = Date.now();
        this.setState('running');
        this.ctx.events.emit('ready', this.path);
        resolve();
      };
      this.exited = new Promise<void>((done) => {
        child.once('error', (err) => {
          // spawn failures (ENOENT, EACCES) come as 'error' without an 'exit'.
          this.child = undefined;
          this.setState('exited');
          this.lastExit = `cannot spawn ${cmd}: ${errnoOf(err) ?? err.message}`;
          failStart(this.lastExit, err);
          done();
        });
        child.once('exit', (code, signal) => {
          this.child = undefined;
          // The leader is gone; what it left in its group goes with it.
          if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
          this.removePidfile();
          const reason = signal !== null ? `killed by ${signal}` : `exited with ${code}`;
          this.lastExit = reason;
          child.stdout?.once('close', () => log?.flush());
          const wasStopping = this.state === 'stopping';
          this.setState(wasStopping ? 'stopped' : 'exited');
          done();
          if (starting) {
            failStart(`${reason} before it was ready`);
            return;
          }
          if (wasStopping) return;
          if (code !== null && this.spec.noRestartExit.includes(code)) {
            this.ctx.log('info', `${this.path} ${reason}, which no_restart_exit says is final: not restarted`);
            this.expectedRunning = false;
            this.ctx.events.emit('exit', this.path, reason);
            return;
          }
          this.failed(reason);
        });
      });
      child.once('spawn', () => {
        this.writePidfile(child.pid as number);
        this.waitReady(child, becameReady, failStart);
      });
    });
  }

  private waitReady(child: ChildProcess, ready: () => void, fail: (m: string) => void): void {
    const r = this.spec.readiness;
    if (r.kind === 'none') {
      ready();
      return;
    }
    const limit = setTimeout(() => {
      fail(`not ready after ${this.spec.timeout} s`);
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, this.spec.timeout * 1000);
    const readyOnce = () => {
      clearTimeout(limit);
      ready();
    };
    if (r.kind === 'fd') {
      // s6's notification-fd: the child writes a line to this descriptor once it serves.
      const stream = child.stdio[r.fd] as NodeJS.ReadableStream | null;
      let seen = '';
      stream?.on('data', (b: Buffer) => {
        seen += b.toString('latin1');
        if (seen.includes('\n')) readyOnce();
      });
      stream?.on('error', () => undefined);
      return;
    }
    const poll = () => {
      if (this.child !== child || this.state !== 'starting') return;
      const get = r.url.startsWith('https:') ? https.get : http.get;
      const req = get(r.url, { timeout: 1000 }, (res) => {
        res.resume();
        if ((res.statusCode ?? 500) < 300) readyOnce();
        else setTimeout(poll, 100);
      });
      req.on('error', () => setTimeout(poll, 100));
      req.on('timeout', () => req.destroy());
    };
    poll();
  }

  private writePidfile(pid: number): void {
    if (this.spec.pidfile === undefined) return;
    try {
      fs.writeFileSync(this.spec.pidfile, `${pid}\n`);
    } catch (err) {
      this.ctx.log('warning', `${this.path}: cannot write(${this.spec.pidfile}): ${errnoOf(err) ?? String(err)}`);
    }
  }

  private removePidfile(): void {
    if (this.spec.pidfile === undefined) return;
    try {
      fs.unlinkSync(this.spec.pidfile);
    } catch {
      // RACE: someone removed it already; nothing to clean.
    }
  }

  /** TERM (or stop_signal) to the group, KILL after stop_timeout; resolves once the leader has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid === undefined) {
      this.setState('stopped');
      return;
    }
    this.setState('stopping');
    killGroup(child.pid, this.spec.stopSignal);
    const kill = setTimeout(() => {
      this.ctx.log('warning', `${this.path} still running ${this.spec.stopTimeout} s after ${this.spec.stopSignal}: KILL`);
      killGroup(child.pid as number, 'SIGKILL');
    }, this.spec.stopTimeout * 1000);
    await this.exited;
    clearTimeout(kill);
  }

  snapshot(): NodeStatus {
    return {
      ...this.base(),
      type: 'service',
      ...(this.child?.pid !== undefined ? { pid: this.child.pid } : {}),
      ...(this.lastExit !== undefined ? { lastExit: this.lastExit } : {}),
    };
  }

  detach(): void {
    const child = this.child;
    if (child === undefined) return;
    child.removeAllListeners('exit');
    child.unref();
  }

  closeLog(): void {
    this.logFile?.close();
    this.logFile = undefined;
  }

  /** The log file's name, when output goes to one. */
  get logPath(): string | undefined {
    return this.logFile?.file;
  }
}

class LsbNode extends Node {
  declare readonly spec: LsbServiceSpec;
  private poll: NodeJS.Timeout | undefined;
  private lastStatus: number | undefined;

  /** LSB status: 0 running, 3 stopped, anything else dirty (from the command, or the pattern lookup). */
  async status(): Promise<number> {
    if (this.spec.status !== undefined) {
      const r = await runCommand(this.spec.status, this.spec.timeout, this.spec.searchPath);
      this.lastStatus = r.code ?? 4;
      return this.lastStatus;
    }
    this.lastStatus = findProcesses(this.spec.pattern as string).length > 0 ? 0 : 3;
    return this.lastStatus;
  }

  /** Waits (careful mode, as simplevisor: every 0.5 s up to `timeout`) until status says `want`. */
  private async settle(want: (code: number) => boolean): Promise<boolean> {
    const end = Date.now() + this.spec.timeout * 1000;
    for (;;) {
      if (want(await this.status())) return true;
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async start(): Promise<void> {
    this.setState('starting');
    if ((await this.status()) !== 0) {
      const r = await runCommand(this.spec.start, this.spec.timeout, this.spec.searchPath);
      if (r.code !== 0) {
        this.setState('exited');
        throw new StartError(
          this.path,
          `start ${r.timedOut ? `timed out after ${this.spec.timeout} s` : `exited with ${r.code ?? 'an error'}`}${r.output === '' ? '' : `: ${r.output}`}`,
        );
      }
      if (!(await this.settle((c) => c === 0))) {
        this.setState('exited');
        throw new StartError(
          this.path,
          `status not 0 (running) within ${this.spec.timeout} s of start (last ${this.lastStatus})`,
        );
      }
    }
    this.setState('running');
    this.ctx.events.emit('ready', this.path);
    this.schedule();
  }

  private schedule(): void {
    this.poll = setTimeout(() => void this.check(), this.ctx.global.interval * 1000);
  }

  /** wake_up: the next status poll now rather than at the end of the interval. */
  wakeUp(): void {
    if (this.state !== 'running') return;
    clearTimeout(this.poll);
    void this.check();
  }

  private async check(): Promise<void> {
    if (this.state !== 'running') return;
    const code = await this.status();
    if (this.state !== 'running') return;
    if (code === 0) {
      this.schedule();
      return;
    }
    this.setState('exited');
    this.failed(code === 3 ? 'status 3 (stopped)' : `status ${code} (dirty)`);
  }

  async stop(): Promise<void> {
    clearTimeout(this.poll);
    this.setState('stopping');
    if (this.spec.stop !== undefined) {
      const r = await runCommand(this.spec.stop, this.spec.timeout, this.spec.searchPath);
      if (r.code !== 0)
        this.ctx.log(
          'warning',
          `${this.path}: stop exited with ${r.code ?? 'an error'}${r.output === '' ? '' : `: ${r.output}`}`,
        );
    } else {
      for (const pid of findProcesses(this.spec.pattern as string)) process.kill(pid, 'SIGTERM');
    }
    if (!(await this.settle((c) => c !== 0)) && this.spec.pattern !== undefined) {
      for (const pid of findProcesses(this.spec.pattern)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    this.setState('stopped');
  }

  snapshot(): NodeStatus {
    return {
      ...this.base(),
      type: 'service',
      ...(this.lastStatus !== undefined ? { lastExit: `status ${this.lastStatus}` } : {}),
    };
  }

  detach(): void {
    clearTimeout(this.poll);
  }
}

class SupervisorNode extends Node {
  declare readonly spec: SupervisorSpec;
  readonly children: Node[];
  private readonly intensity: IntensityTracker;
  private queue: Promise<void> = Promise.resolve();
  private readonly waits = new Waits();
  /** Incremented by each start and stop: a failure handled across one of them is abandoned. */
  private epoch = 0;
  onRootFailed: (() => void) | undefined;

  constructor(spec: SupervisorSpec, ctx: Context) {
    super(spec, ctx);
    this.intensity = new IntensityTracker(spec.intensity, ctx.global.interval * 1000);
    this.children = spec.children.map((c) => build(c, ctx));
    for (const c of this.children) c.parent = this;
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.queue.then(op).catch((err: unknown) => this.ctx.log('error', `${this.path}: ${(err as Error).message}`));
    this.queue = next;
    return next;
  }

  /** Starts the children in order, each once the one before it is ready. A fresh start: intensity is reset. */
  async start(): Promise<void> {
    this.epoch++;
    this.intensity.reset();
    // A fresh start (first, by the parent, by a command) forgets the children's past failures too.
    for (const c of this.children) if (c instanceof ProcessNode) c.resetBackoff();
    this.setState('starting');
    const failed = await this.startEach(this.children);
    if (this.state !== 'starting') return;
    this.setState('running');
    if (failed !== undefined) this.childFailed(failed.node, failed.reason);
  }

  /** Starts the given children in order that should run and are not; stops at the first that fails to start. */
  private async startEach(nodes: readonly Node[]): Promise<{ node: Node; reason: string } | undefined> {
    for (const c of nodes) {
      if (!c.expectedRunning || c.state === 'running') continue;
      if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'failed') return undefined;
      try {
        await c.start();
      } catch (err) {
        this.ctx.log('error', (err as Error).message);
        this.ctx.events.emit('exit', c.path, (err as Error).message);
        return { node: c, reason: (err as Error).message };
      }
    }
    return undefined;
  }

  /** A child died, failed to start, or failed (a supervisor): handled after anything already under way. */
  childFailed(child: Node, reason: string): void {
    void this.enqueue(() => this.handleFailure(child, reason));
  }

  private async handleFailure(child: Node, reason: string): Promise<void> {
    if (this.state !== 'running' || child.state === 'running' || !child.expectedRunning) return;
    const epoch = this.epoch;
    this.ctx.log('warning', `${child.path} ${reason}`);
    if (this.intensity.record(Date.now())) {
      const i = this.spec.intensity;
      this.ctx.log(
        'error',
        i.kind === 'otp'
          ? `${this.path}: more than ${i.maxRestarts} restarts within ${i.maxTime} s: giving up`
          : `${this.path}: adjustments needed in more than ${i.adjustments} of the last ${i.window} cycles: giving up`,
      );
      await this.fail();
      return;
    }
    const idx = this.children.indexOf(child);
    const set =
      this.spec.strategy === 'one_for_one'
        ? [child]
        : this.spec.strategy === 'one_for_all'
          ? this.children
          : this.children.slice(idx);
    this.ctx.log('info', `applying ${this.spec.strategy} strategy to supervisor ${this.path} for ${child.path}`);
    for (const c of [...set].reverse()) {
      if (c !== child && c.state !== 'stopped') await c.stop();
    }
    if (this.epoch !== epoch) return;
    if (child instanceof ProcessNode) {
      const delay = child.backoffDelay();
      if (delay > 0) {
        child.state = 'backoff';
        this.ctx.log('info', `${child.path}: restart in ${Math.round(delay)} ms (backoff)`);
        await this.waits.wait(delay);
        if (this.state !== 'running' || this.epoch !== epoch) return;
      }
    } else if (child instanceof LsbNode && child.state !== 'stopped') {
      await child.stop();
    }
    child.restarts++;
    this.restarts++;
    this.ctx.events.emit('restart', child.path);
    // The set in order, then any other child that should run and does not (one that never started).
    let failed = await this.startEach(set);
    if (failed === undefined && this.state === 'running') failed = await this.startEach(this.children);
    if (failed !== undefined && this.state === 'running') this.childFailed(failed.node, failed.reason);
  }

  /** Gives up: children stopped in reverse order, then the failure goes up (or, at the root, to the hold-down). */
  private async fail(): Promise<void> {
    this.setState('stopping');
    await this.stopChildren();
    this.setState('failed');
    this.ctx.events.emit('failed', this.path);
    if (this.parent !== undefined) this.failed('failed (too many restarts)');
    else this.onRootFailed?.();
  }

  /** Abandons the failure being handled (its backoff wait ends at once): the whole supervisor is being stopped. */
  interrupt(): void {
    this.epoch++;
    this.waits.cancel();
  }

  async stopChildren(): Promise<void> {
    this.interrupt();
    for (const c of [...this.children].reverse()) {
      if (c.state !== 'stopped') await c.stop();
    }
  }

  async stop(): Promise<void> {
    const was = this.state;
    this.setState('stopping');
    await this.stopChildren();
    this.setState(was === 'failed' ? 'failed' : 'stopped');
  }

  /** Runs `op` after any failure being handled, so that a command never races the strategy. */
  serialize(op: () => Promise<void>): Promise<void> {
    let error: unknown;
    const done = this.enqueue(async () => {
      try {
        await op();
      } catch (err) {
        error = err;
      }
    });
    return done.then(() => {
      if (error !== undefined) throw error;
    });
  }

  snapshot(): NodeStatus {
    const children = this.children.map((c) => c.snapshot());
    const own = this.base();
    return { ...own, type: 'supervisor', ok: own.ok && children.every((c) => c.ok), children };
  }

  detach(): void {
    this.epoch++;
    this.waits.cancel();
    for (const c of this.children) c.detach();
  }
}

function build(spec: EntrySpec, ctx: Context): Node {
  if (spec.type === 'supervisor') return new SupervisorNode(spec, ctx);
  return spec.kind === 'process' ? new ProcessNode(spec, ctx) : new LsbNode(spec, ctx);
}

function walk(n: Node): Node[] {
  return n instanceof SupervisorNode ? [n, ...n.children.flatMap(walk)] : [n];
}

export interface SupervisionOptions {
  /** Where the tree's messages go (a library never prints). */
  log?: Log;
  /** Captured output of services without a log directory; dropped when not given. */
  output?: OutputSink;
}

/**
 * A supervision tree built from a configuration. `start()` brings it up; a failure of the root holds down for
 * `hold_down` seconds and starts it again (0: `gave-up` is emitted and the tree stays down, as simplevisor exits).
 */
export class Supervision extends EventEmitter<SupervisionEvents> {
  readonly root: Node;
  private holdTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly log: Log;

  constructor(
    readonly config: SupervisionConfig,
    options: SupervisionOptions = {},
  ) {
    super();
    this.log = options.log ?? (() => undefined);
    const ctx: Context = { global: config.global, log: this.log, output: options.output ?? (() => undefined), events: this };
    this.root = build(config.root, ctx);
    if (this.root instanceof SupervisorNode) this.root.onRootFailed = () => this.rootFailed();
  }

  private rootFailed(): void {
    const ms = this.config.global.holdDown * 1000;
    if (ms <= 0 || this.stopping) {
      this.emit('gave-up');
      return;
    }
    this.log('error', `supervision failed: holding down for ${this.config.global.holdDown} s, then starting again`);
    (this.root as SupervisorNode).state = 'held';
    this.emit('held', ms);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      if (!this.stopping) void this.startRoot();
    }, ms);
  }

  private async startRoot(): Promise<void> {
    try {
      await this.root.start();
    } catch (err) {
      // Only a root that is itself a service can fail its start; there is no parent to restart it.
      this.log('error', (err as Error).message);
      this.emit('gave-up');
    }
  }

  /** Starts the tree; resolves once every child has been started in order (or has failed and is being handled). */
  async start(): Promise<void> {
    this.stopping = false;
    await this.startRoot();
  }

  /** Stops everything, children in reverse start order. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.holdTimer);
    await this.root.stop();
    for (const n of walk(this.root)) if (n instanceof ProcessNode) n.closeLog();
  }

  /** stop_children: every child stopped, the supervisor itself stays up (idle until told to start). */
  async stopChildren(): Promise<void> {
    clearTimeout(this.holdTimer);
    if (this.root instanceof SupervisorNode) {
      // A backoff wait under way would hold the queue for up to backoff_max: cut it short, then stop in turn.
      this.root.interrupt();
      await this.root.serialize(() => this.root.stop());
    } else await this.root.stop();
  }

  /** stop_supervisor: forgets the children and leaves them running. */
  detach(): void {
    this.stopping = true;
    clearTimeout(this.holdTimer);
    this.root.detach();
  }

  find(entry: string | undefined): Node {
    if (entry === undefined || entry === '' || entry === this.root.path) return this.root;
    const node = walk(this.root).find((n) => n.path === entry || n.path === `${this.root.path}/${entry}`);
    if (node === undefined) throw new ControlError(`no entry ${entry} in the supervision tree`);
    return node;
  }

  status(entry?: string): NodeStatus {
    return this.find(entry).snapshot();
  }

  /** Restarts one child through its parent's queue (not counted as a failure). */
  async restartChild(entry: string): Promise<void> {
    const node = this.find(entry);
    const run = async () => {
      await node.stop();
      node.expectedRunning = true;
      await node.start();
    };
    if (node.parent === undefined) await run();
    else await node.parent.serialize(run);
  }

  /** `start PATH` / `stop PATH`: the entry is now expected running (started) or stopped (stopped). */
  async setExpected(entry: string | undefined, running: boolean): Promise<void> {
    const node = this.find(entry);
    const run = async () => {
      node.expectedRunning = running;
      if (running && node.state !== 'running') await node.start();
      if (!running && node.state !== 'stopped') await node.stop();
    };
    if (node.parent === undefined) {
      this.stopping = !running;
      clearTimeout(this.holdTimer);
      await run();
    } else {
      await node.parent.serialize(run);
    }
  }

  /**
   * `single`: one supervision cycle of the LSB services and exit, for cron, as simplevisor's: each one's status
   * compared with what is expected, and started, stopped or restarted (a dirty status) to match. Services run as
   * children exist only while a supervisor runs: they are reported, not started.
   */
  async single(): Promise<{ ok: boolean; lines: string[] }> {
    const lines: string[] = [];
    let ok = true;
    for (const n of walk(this.root)) {
      if (n instanceof ProcessNode) {
        lines.push(`${n.path}: runs only under a running supervisor (msgsupervise start), skipped`);
        continue;
      }
      if (!(n instanceof LsbNode)) continue;
      const code = await n.status();
      const want = n.expectedRunning;
      if ((code === 0) === want && (code === 0 || code === 3)) {
        lines.push(`${n.path}: OK, as expected (status ${code})`);
        continue;
      }
      try {
        if (code !== 3) await n.stop();
        if (want) await n.start();
        lines.push(`${n.path}: status ${code}, ${want ? 'started' : 'stopped'}`);
      } catch (err) {
        ok = false;
        lines.push(`${n.path}: status ${code}, ${(err as Error).message}`);
      }
      n.detach();
    }
    return { ok, lines };
  }

  /** wake_up: every LSB service polled now. */
  wakeUp(): void {
    for (const n of walk(this.root)) if (n instanceof LsbNode) n.wakeUp();
  }

  /** Log files of the services that write to one, by path. */
  logFiles(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of walk(this.root)) if (n instanceof ProcessNode && n.logPath !== undefined) out[n.path] = n.logPath;
    return out;
  }
}

/** simplevisor's `check` text: one line per entry, `path: OK, as expected` or `path: WARNING, not expected`. */
export function checkLines(s: NodeStatus, out: string[] = []): string[] {
  out.push(`${s.path}: ${s.ok ? 'OK, as expected' : `WARNING, not expected (${s.state}, expected ${s.expected})`}`);
  for (const c of s.children ?? []) checkLines(c, out);
  return out;
}
