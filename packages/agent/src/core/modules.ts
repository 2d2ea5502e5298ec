import type { Message } from '@msgbricks/message';

/** One message on its way, with the id its incoming module acks it by. */
export interface Delivery {
  readonly id: string;
  readonly message: Message;
  /**
   * The incoming module refuses this message (a STOMP MESSAGE over the frame limits, say): the pipeline neither
   * checks nor sends it, but dead-letters it with this reason (acked), or releases it without a dead-letter module.
   */
  readonly refused?: string;
}

/**
 * Where messages come from: a broker subscription or a directory queue. The
 * pipeline acks a delivery only once the outgoing side has made it safe, so
 * what was not acked is delivered again after a crash: at least once.
 */
export interface Incoming {
  readonly description: string;
  open(): Promise<void>;
  /**
   * The next delivery; `undefined` when there is none right now (the pipeline
   * idles and asks again), `null` when the input is finished.
   */
  next(): Promise<Delivery | null | undefined>;
  /**
   * Optional, for modules fed by a connection: `listener` is called whenever a delivery arrives, so that a pipeline
   * that found nothing (next() gave undefined) asks again at once instead of at the end of its idle interval. Without
   * it a broker's prefetch window, drained and acked, would wait for that timer before its next messages were read.
   */
  onArrival?(listener: () => void): void;
  /** The message is safe downstream: consume it for good (remove the element, ACK the frame). */
  ack(id: string): Promise<void>;
  /** Give it back, to be delivered again (unlock the element, NACK the frame). */
  release(id: string): Promise<void>;
  /** Stops; whatever was neither acked nor released is given back. */
  close(): Promise<void>;
}

/** Where messages go: a broker destination or a directory queue. */
export interface Outgoing {
  readonly description: string;
  open(): Promise<void>;
  /**
   * Resolves once the message is safe: a broker receipt, or a durable queue
   * write. Rejects with a RejectedError when it never will be (dead-letter it);
   * a transient failure (a lost connection) is the module's to retry.
   */
  send(message: Message): Promise<void>;
  /**
   * Optional, for modules that gather sends into batches (group commit): the pipeline has nothing more to send for
   * now (its input is empty, its window is full, or it is finishing), so what was gathered should be written now
   * rather than when a batch timer fires.
   */
  flush?(): void;
  close(): Promise<void>;
}

/** The user's hooks, as stompclt's callbacks: `check` returns the message to send, or a reason to drop it. */
export interface Callback {
  /**
   * The callback queues overlapping check() calls itself and runs them one at a time, in order (WorkerCallback): the
   * pipeline may then ask for the next messages' checks before the previous results are in, which hides the round
   * trip to a worker thread. Otherwise (in-thread callbacks) check() is only called once the previous call settled.
   */
  readonly pipelined?: boolean;
  start?(data: Record<string, string>): void | Promise<void>;
  check(message: Message): Message | string | Promise<Message | string>;
  idle?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}
