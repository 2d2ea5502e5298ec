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
import type {
  EntrySpec,
  GlobalSpec,
  LsbServiceSpec,
  ProcessServiceSpec,
  ServiceSpec,
  SupervisionConfig,
  SupervisorSpec,
} from './config';
import { ControlError, StartError } from './errors';
import { Backoff, IntensityTracker } from './intensity';
import { RotatingLog } from './logs';
import { alive, envWithPath, findProcesses, killGroup, processIdentity, runCommand, waitGone } from './proc';

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

/**
 * A process stop_supervisor left running, as the next supervisor reads it: the entry's path, the pid and its start
 * time (so that a reused pid is not taken for it), and how it was run (`runKey`: adopted only if unchanged).
 */
export interface LeftChild {
  readonly path: string;
  readonly pid: number;
  readonly start: string;
  readonly run: string;
}

/** How often an adopted process (not our child: no exit event) is looked for in /proc. */
const ADOPTED_POLL_MS = 100;

/** Where a child's output goes when it is captured but there is no log directory. */
export type OutputSink = (path: string, source: 'out' | 'err', chunk: Buffer) => void;

interface Context {
  /** Replaced by a reload: nodes read it when they use it. */
  global: GlobalSpec;
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

/** An entry of the running tree (exported for ./single only; not part of the package's API). */
export abstract class Node {
  state: State = 'stopped';
  since = Date.now();
  restarts = 0;
  expectedRunning: boolean;
  parent: SupervisorNode | undefined;

  constructor(
    public spec: EntrySpec,
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
  /** A reload removed or replaced this entry, now stopped: what it holds (its log file) is released. */
  async retire(): Promise<void> {}

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

export class ProcessNode extends Node {
  declare spec: ProcessServiceSpec;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  /** Resolves once the last child's output pipes have closed: nothing more can reach its log. */
  private pipesClosed: Promise<void> = Promise.resolve();
  private readyAt = 0;
  private lastExit: string | undefined;
  private backoff: Backoff;
  private logFile: RotatingLog | undefined;
  /** A process a previous supervisor left running, taken over: not our child, so its end is seen by polling. */
  private adopted: { pid: number; start: string; poll: NodeJS.Timeout } | undefined;

  constructor(spec: ProcessServiceSpec, ctx: Context) {
    super(spec, ctx);
    this.backoff = new Backoff(spec.backoffMin, spec.backoffMax);
  }

  /** What identifies how it runs, for a later supervisor to tell whether it may adopt it. */
  runKey(): string {
    return JSON.stringify(runFields(this.spec, this.ctx.global));
  }

  /**
   * Takes over `pid` (started at `start`), left running by a previous supervisor: it counts as running and ready.
   * Not being its parent, the supervisor cannot wait for it: /proc is polled every ADOPTED_POLL_MS, and its end is a
   * failure like any other (restarted as a child of this supervisor), its exit status unknown.
   */
  adopt(pid: number, start: string): void {
    const poll = setInterval(() => {
      if (processIdentity(pid)?.start === start) return;
      clearInterval(poll);
      this.adopted = undefined;
      this.removePidfile();
      this.lastExit = 'ended (adopted from a previous supervisor: exit status unknown)';
      if (this.state === 'stopping') return;
      this.setState('exited');
      this.failed(this.lastExit);
    }, ADOPTED_POLL_MS);
    poll.unref();
    this.adopted = { pid, start, poll };
    this.readyAt = Date.now();
    this.setState('running');
  }

  /** The process it runs (child or adopted), for the next supervisor after stop_supervisor. */
  left(): LeftChild | undefined {
    const pid = this.child?.pid ?? this.adopted?.pid;
    const id = pid === undefined ? undefined : processIdentity(pid);
    if (pid === undefined || id === undefined) return undefined;
    return { path: this.path, pid, start: id.start, run: this.runKey() };
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

  /** Where this service's log goes under the current global keys (undefined: no log directory, or not output = log). */
  private logTarget(): { file: string; options: { maxSize: number; keep: number } } | undefined {
    const g = this.ctx.global;
    if (this.spec.output !== 'log' || g.logDir === undefined) return undefined;
    return {
      file: path.join(g.logDir, `${this.path.replaceAll('/', '.')}.log`),
      options: { maxSize: g.logMaxSize, keep: g.logKeep },
    };
  }

  private openLog(): void {
    const target = this.logTarget();
    if (target === undefined || this.logFile !== undefined) return;
    this.logFile = new RotatingLog(target.file, target.options);
  }

  /**
   * A reload kept this service: the settings it is not run with (stop, backoff, timeout, exit codes) apply from now
   * on; a new log_dir, log_max_size or log_keep applies to the running child at once, as the supervisor is the writer.
   */
  update(spec: ProcessServiceSpec, notes: ReloadNotes): void {
    const before = this.spec;
    this.spec = spec;
    if (before.backoffMin !== spec.backoffMin || before.backoffMax !== spec.backoffMax)
      this.backoff = new Backoff(spec.backoffMin, spec.backoffMax);
    notes.settings(before, spec);
    const target = this.logTarget();
    try {
      if (target === undefined) this.closeLog();
      else if (this.logFile !== undefined) this.logFile.retarget(target.file, target.options);
      // Not open yet: its next start opens it; a running child's lines go there from now on.
      else if (this.child !== undefined) this.openLog();
    } catch (err) {
      // The lines go to the supervisor's own output meanwhile: nothing is lost, and the next start tries again.
      this.logFile = undefined;
      this.ctx.log('error', `${this.path}: ${(err as Error).message}`);
    }
  }

  override async retire(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // A grandchild outside the group could hold the pipe open: the log is closed after a second anyway.
    await Promise.race([this.pipesClosed, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    this.closeLog();
  }

  start(): Promise<void> {
    if (this.child !== undefined || this.adopted !== undefined) return Promise.resolve();
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
    if (this.spec.output === 'log') {
      // Without a log directory the lines go to the command's `output` (its own stdout and stderr: the journal).
      // The log is looked up at each write: a reload may move it while the child runs.
      const sink = (source: 'out' | 'err') => (chunk: Buffer) => {
        const log = this.logFile;
        if (log !== undefined) log.write(source, chunk);
        else this.ctx.output(this.path, source, chunk);
      };
      child.stdout?.on('data', sink('out'));
      child.stderr?.on('data', sink('err'));
    }
    const pipes = [child.stdout, child.stderr].filter((p) => p !== null);
    this.pipesClosed = Promise.all(pipes.map((p) => new Promise((r) => p.once('close', r)))).then(() => undefined);
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
          child.stdout?.once('close', () => this.logFile?.flush());
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
    if (this.adopted !== undefined) {
      await this.stopAdopted(this.adopted.pid, this.adopted.start);
      return;
    }
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

  private async stopAdopted(pid: number, start: string): Promise<void> {
    this.setState('stopping');
    killGroup(pid, this.spec.stopSignal);
    if (!(await waitGone(pid, start, this.spec.stopTimeout * 1000))) {
      this.ctx.log('warning', `${this.path} still running ${this.spec.stopTimeout} s after ${this.spec.stopSignal}: KILL`);
      killGroup(pid, 'SIGKILL');
      await waitGone(pid, start, 5000);
    }
    if (this.adopted !== undefined) clearInterval(this.adopted.poll);
    this.adopted = undefined;
    this.removePidfile();
    this.setState('stopped');
  }

  snapshot(): NodeStatus {
    const pid = this.child?.pid ?? this.adopted?.pid;
    return {
      ...this.base(),
      type: 'service',
      ...(pid !== undefined ? { pid } : {}),
      ...(this.lastExit !== undefined ? { lastExit: this.lastExit } : {}),
    };
  }

  detach(): void {
    if (this.adopted !== undefined) clearInterval(this.adopted.poll);
    const child = this.child;
    if (child === undefined) return;
    child.removeAllListeners('exit');
    child.unref();
    // Our ends of its pipes (captured output, readiness) would keep this process alive: closed, the child's next
    // write to them fails (EPIPE), which is why only inherit and null children are meant to outlive the supervisor.
    for (const stream of child.stdio) stream?.destroy();
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

export class LsbNode extends Node {
  declare spec: LsbServiceSpec;
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

  /** A reload kept this service: its commands other than start (and its pattern) apply from now on, and a new interval. */
  update(spec: LsbServiceSpec, notes: ReloadNotes): void {
    notes.settings(this.spec, spec);
    this.spec = spec;
    if (this.state !== 'running') return;
    clearTimeout(this.poll);
    this.schedule();
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

export class SupervisorNode extends Node {
  declare spec: SupervisorSpec;
  children: Node[];
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
    // A reload removed or replaced it after it failed: its replacement, if any, was started by the reload.
    if (!this.children.includes(child)) return;
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

  /**
   * A reload: this supervisor takes `next` (its new spec, same path). Its children are matched by name. One that
   * kept its kind and what it is run with (command, environment, ...: see `replaceReason`) keeps running untouched;
   * the others are replaced: the old one stopped the way it was configured (reverse start order, with the removed
   * ones), the new one started in its place of the start order, once those before it are ready. The strategy and
   * intensity apply from now on; a restart under way (its backoff) is cut short and its child started here.
   * Nothing starts under a supervisor that is not running (stopped, failed, held): its next start starts them.
   */
  async reconcile(next: SupervisorSpec, notes: ReloadNotes): Promise<void> {
    this.interrupt();
    await this.serialize(async () => {
      const before = this.spec;
      this.spec = next;
      if (before.strategy !== next.strategy) notes.add(this.path, 'updated', `strategy ${next.strategy}`);
      if (JSON.stringify(before.intensity) !== JSON.stringify(next.intensity))
        notes.add(this.path, 'updated', 'intensity (restarts already counted stay counted)');
      this.intensity.configure(next.intensity, this.ctx.global.interval * 1000);
      const old = new Map(this.children.map((c) => [c.spec.name, c]));
      const plan: { node: Node; spec: EntrySpec; kept: boolean }[] = [];
      const retired = new Set<Node>();
      for (const spec of next.children) {
        const was = old.get(spec.name);
        old.delete(spec.name);
        const why = was === undefined ? undefined : replaceReason(was.spec, spec, notes.before, this.ctx.global);
        if (was !== undefined && why === undefined) {
          plan.push({ node: was, spec, kept: true });
          continue;
        }
        if (was === undefined) notes.add(spec.path, 'added');
        else {
          retired.add(was);
          notes.add(spec.path, 'restarted', why);
        }
        const node = build(spec, this.ctx);
        node.parent = this;
        plan.push({ node, spec, kept: false });
      }
      for (const gone of old.values()) {
        retired.add(gone);
        notes.add(gone.path, 'removed');
      }
      for (const c of [...this.children].reverse()) {
        if (!retired.has(c)) continue;
        if (c.state !== 'stopped') await c.stop();
        await c.retire();
      }
      this.children = plan.map((p) => p.node);
      let failed: { node: Node; reason: string } | undefined;
      for (const { node, spec, kept } of plan) {
        if (kept) {
          const running = spec.expected !== 'stopped';
          if (running !== (node.spec.expected !== 'stopped')) {
            node.expectedRunning = running;
            notes.add(node.path, 'updated', `expected ${running ? 'running' : 'stopped'}`);
            if (!running && node.state !== 'stopped') await node.stop();
          }
          if (node instanceof SupervisorNode) await node.reconcile(spec as SupervisorSpec, notes);
          else if (node instanceof ProcessNode) node.update(spec as ProcessServiceSpec, notes);
          else (node as LsbNode).update(spec as LsbServiceSpec, notes);
        }
        if (failed !== undefined || this.state !== 'running' || !node.expectedRunning || node.state === 'running') continue;
        try {
          await node.start();
        } catch (err) {
          this.ctx.log('error', (err as Error).message);
          this.ctx.events.emit('exit', node.path, (err as Error).message);
          failed = { node, reason: (err as Error).message };
        }
      }
      // As a failed start anywhere: handled by the strategy, after this.
      if (failed !== undefined) this.childFailed(failed.node, failed.reason);
    });
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

  override async retire(): Promise<void> {
    await Promise.all(this.children.map((c) => c.retire()));
  }
}

/** One change a reload made, as `reload` reports it. */
export interface ReloadChange {
  /** The entry's path; '' for a global key. */
  readonly path: string;
  readonly change: 'added' | 'removed' | 'restarted' | 'updated';
  /** What changed: the keys that made the restart, or the setting now applied. */
  readonly detail?: string;
}

/** The changes of a reload under way, and the global keys it replaces. */
class ReloadNotes {
  readonly changes: ReloadChange[] = [];

  constructor(readonly before: GlobalSpec) {}

  add(path: string, change: ReloadChange['change'], detail?: string): void {
    this.changes.push(detail === undefined ? { path, change } : { path, change, detail });
  }

  /** A kept service whose other keys changed: noted with their names. */
  settings(before: ServiceSpec, after: ServiceSpec): void {
    const keys = Object.keys(after).filter(
      (k) =>
        k !== 'where' &&
        k !== 'expected' &&
        JSON.stringify(before[k as keyof ServiceSpec]) !== JSON.stringify(after[k as keyof ServiceSpec]),
    );
    if (keys.length > 0) this.add(after.path, 'updated', keys.map(keyName).join(', '));
  }
}

/** The configuration key of a spec field, for messages. */
function keyName(field: string): string {
  const names: Record<string, string> = {
    argv: 'command',
    searchPath: 'path',
    pidfile: 'daemon',
    readiness: 'ready',
    stopSignal: 'stop_signal',
    stopTimeout: 'stop_timeout',
    backoffMin: 'backoff_min',
    backoffMax: 'backoff_max',
    noRestartExit: 'no_restart_exit',
  };
  return names[field] ?? field;
}

/**
 * What a running service was started with, by key: a change of any of them means stopping it and starting it anew.
 * The rest (stop_signal, stop_timeout, backoff, timeout, no_restart_exit, an LSB service's stop and status, a
 * ready_url) only matters at its next stop or start and applies without a restart.
 */
function runFields(spec: ServiceSpec, g: GlobalSpec): Record<string, unknown> {
  if (spec.kind === 'lsb') return { start: spec.start, pattern: spec.pattern, path: spec.searchPath };
  return {
    command: spec.argv,
    cwd: spec.cwd,
    env: Object.entries(spec.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    // Its descriptors: a notification fd is one of them; a URL is only asked at start.
    ready_fd: spec.readiness.kind === 'fd' ? spec.readiness.fd : undefined,
    output: spec.output,
    daemon: spec.pidfile,
    path: spec.searchPath,
    syslog_socket: spec.output === 'syslog' ? g.syslogSocket : undefined,
  };
}

/** Why a reload must replace the running entry `before` by `after` (same name); undefined: it is kept. */
function replaceReason(before: EntrySpec, after: EntrySpec, gBefore: GlobalSpec, gAfter: GlobalSpec): string | undefined {
  if (before.type !== after.type) return `now a ${after.type}`;
  if (before.type === 'supervisor' || after.type === 'supervisor') return undefined;
  if (before.kind !== after.kind)
    return after.kind === 'lsb' ? 'now an LSB service (start/control)' : 'now run as a child (command/daemon)';
  const a = runFields(before, gBefore);
  const b = runFields(after, gAfter);
  const keys = Object.keys(b).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return keys.length === 0 ? undefined : `${keys.join(', ')} changed`;
}

function build(spec: EntrySpec, ctx: Context): Node {
  if (spec.type === 'supervisor') return new SupervisorNode(spec, ctx);
  return spec.kind === 'process' ? new ProcessNode(spec, ctx) : new LsbNode(spec, ctx);
}

export function walk(n: Node): Node[] {
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
  private top: Node;
  private holdTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly log: Log;
  private readonly ctx: Context;
  private current: SupervisionConfig;
  /** Starts of the root and reloads, one after the other: a reload never meets a tree half started. */
  private rootOps: Promise<void> = Promise.resolve();

  constructor(config: SupervisionConfig, options: SupervisionOptions = {}) {
    super();
    this.current = config;
    this.log = options.log ?? (() => undefined);
    this.ctx = { global: config.global, log: this.log, output: options.output ?? (() => undefined), events: this };
    this.top = this.build(config.root);
  }

  /** The configuration in force (the last one reloaded). */
  get config(): SupervisionConfig {
    return this.current;
  }

  get root(): Node {
    return this.top;
  }

  private build(spec: EntrySpec): Node {
    const root = build(spec, this.ctx);
    if (root instanceof SupervisorNode) root.onRootFailed = () => this.rootFailed();
    return root;
  }

  /** Runs `op` after the root operations before it (a failed one does not stop the next). */
  private exclusive(op: () => Promise<void>): Promise<void> {
    const next = this.rootOps.then(op);
    this.rootOps = next.catch(() => undefined);
    return next;
  }

  /**
   * Applies a new configuration to the running tree without restarting what did not change: entries are matched
   * by path; one still run the same way keeps running (same pid), one changed is stopped the way it was configured
   * and started the new way, a removed one is stopped, an added one started in its place of the start order. A
   * supervisor's strategy and intensity, and the global keys (interval, hold_down, log_dir, log_max_size, log_keep)
   * apply at once without a restart. A root of another type or name replaces the whole tree. Resolves with what
   * changed once every started entry is ready (or has failed and is being handled).
   */
  reload(next: SupervisionConfig): Promise<ReloadChange[]> {
    let notes: ReloadNotes | undefined;
    return this.exclusive(async () => {
      const before = this.current.global;
      notes = new ReloadNotes(before);
      for (const k of Object.keys(next.global) as (keyof GlobalSpec)[]) {
        if (before[k] !== next.global[k])
          notes.add(
            '',
            'updated',
            k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
          );
      }
      this.current = next;
      this.ctx.global = next.global;
      const root = this.top;
      const why = root.spec.name !== next.root.name ? 'another root' : replaceReason(root.spec, next.root, before, next.global);
      if (why === undefined) {
        if (root instanceof SupervisorNode) await root.reconcile(next.root as SupervisorSpec, notes);
        else if (root instanceof ProcessNode) root.update(next.root as ProcessServiceSpec, notes);
        else (root as LsbNode).update(next.root as LsbServiceSpec, notes);
        return;
      }
      notes.add(next.root.path, 'restarted', why);
      const wasUp = root.state !== 'stopped';
      clearTimeout(this.holdTimer);
      if (root instanceof SupervisorNode) root.interrupt();
      await root.stop();
      await root.retire();
      this.top = this.build(next.root);
      if (wasUp && !this.stopping) await this.startRoot();
    }).then(() => notes?.changes ?? []);
  }

  private rootFailed(): void {
    const ms = this.current.global.holdDown * 1000;
    if (ms <= 0 || this.stopping) {
      this.emit('gave-up');
      return;
    }
    this.log('error', `supervision failed: holding down for ${this.current.global.holdDown} s, then starting again`);
    (this.top as SupervisorNode).state = 'held';
    this.emit('held', ms);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      if (!this.stopping) void this.exclusive(() => this.startRoot());
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
    await this.exclusive(() => this.startRoot());
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

  /**
   * stop_supervisor: forgets the children and leaves them running; returns them, for `adopt` by the next
   * supervisor.
   */
  detach(): LeftChild[] {
    this.stopping = true;
    clearTimeout(this.holdTimer);
    const left = walk(this.root).flatMap((n) => (n instanceof ProcessNode ? (n.left() ?? []) : []));
    this.root.detach();
    return left;
  }

  /**
   * Before `start`: takes over the processes a previous supervisor left running (`detach`) that this tree would run
   * the same way, with `output` inherit or null (whose output never went through that supervisor). The others (gone
   * from the tree, changed, or whose output pipe was the previous supervisor's) are stopped, their process group
   * TERM then KILL, so that `start` does not run a second copy. Resolves with one line per process.
   */
  async adopt(left: readonly LeftChild[]): Promise<string[]> {
    const lines: string[] = [];
    for (const l of left) {
      const id = processIdentity(l.pid);
      // Its own group leader, as a child of ours was: otherwise the pid names another process now.
      if (id === undefined || id.start !== l.start || id.pgid !== l.pid) {
        lines.push(`${l.path}: pid ${l.pid} left by the previous supervisor has ended`);
        continue;
      }
      const node = walk(this.root).find((n) => n.path === l.path);
      const why = !(node instanceof ProcessNode)
        ? 'no longer in the configuration'
        : node.runKey() !== l.run
          ? 'changed in the configuration'
          : node.spec.output !== 'inherit' && node.spec.output !== 'null'
            ? 'its output went through the previous supervisor'
            : !node.expectedRunning
              ? 'expected stopped'
              : undefined;
      if (why === undefined && node instanceof ProcessNode) {
        node.adopt(l.pid, l.start);
        lines.push(`${l.path}: pid ${l.pid} adopted`);
        continue;
      }
      const timeout = node instanceof ProcessNode ? node.spec.stopTimeout : 10;
      killGroup(l.pid, 'SIGTERM');
      if (!(await waitGone(l.pid, l.start, timeout * 1000))) {
        killGroup(l.pid, 'SIGKILL');
        await waitGone(l.pid, l.start, 5000);
      }
      lines.push(`${l.path}: pid ${l.pid} left by the previous supervisor not adopted (${why}): stopped`);
    }
    return lines;
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
    await this.inTurn(entry, async (node) => {
      await node.stop();
      node.expectedRunning = true;
      await node.start();
    });
  }

  /** `start PATH` / `stop PATH`: the entry is now expected running (started) or stopped (stopped). */
  async setExpected(entry: string | undefined, running: boolean): Promise<void> {
    if (this.find(entry).parent === undefined) {
      this.stopping = !running;
      clearTimeout(this.holdTimer);
    }
    await this.inTurn(entry, async (node) => {
      node.expectedRunning = running;
      if (running && node.state !== 'running') await node.start();
      if (!running && node.state !== 'stopped') await node.stop();
    });
  }

  /**
   * Runs `op` on the entry in its parent's queue (the root's: after root starts and reloads). The entry is looked up
   * again when its turn comes: a reload before it may have replaced it (or removed it: a ControlError then).
   */
  private inTurn(entry: string | undefined, op: (node: Node) => Promise<void>): Promise<void> {
    const parent = this.find(entry).parent;
    const run = () => op(this.find(entry));
    return parent === undefined ? this.exclusive(run) : parent.serialize(run);
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
