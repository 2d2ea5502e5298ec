import type { QueueBase } from './base';
import { InvalidOptionError } from './errors';

export interface SetEntry<Q extends QueueBase = QueueBase> {
  queue: Q;
  name: string;
}

/**
 * Iterates several queues as one, merged on the full `dir/name` string as
 * python-dirq's QueueSet does (Perl's Set compares the element name alone;
 * the orders differ only across queues whose intermediate directories differ).
 */
export class QueueSet<Q extends QueueBase = QueueBase> implements AsyncIterable<SetEntry<Q>> {
  private readonly queues: Q[] = [];
  private cursor: AsyncIterator<SetEntry<Q>> | undefined;

  constructor(...queues: (Q | Q[])[]) {
    this.add(...queues);
  }

  /** Adds queues; a queue already in the set (same id) is an error. */
  add(...queues: (Q | Q[])[]): void {
    for (const q of queues.flat() as Q[]) {
      if (q === null || typeof q !== 'object' || typeof (q as { id?: unknown }).id !== 'string' || !(Symbol.asyncIterator in q)) {
        throw new InvalidOptionError('QueueSet: not a queue');
      }
      if (this.queues.some((x) => x.id === q.id))
        throw new InvalidOptionError(`QueueSet: duplicate queue ${q.path} (id ${q.id})`);
      this.queues.push(q);
    }
    this.cursor = undefined;
  }

  /** Drops a queue (by id). */
  remove(queue: Q): void {
    const i = this.queues.findIndex((x) => x.id === queue.id);
    if (i < 0) throw new InvalidOptionError(`QueueSet: ${queue.path} is not in the set`);
    this.queues.splice(i, 1);
    this.cursor = undefined;
  }

  get size(): number {
    return this.queues.length;
  }

  async count(): Promise<number> {
    let n = 0;
    for (const q of this.queues) n += await q.count();
    return n;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SetEntry<Q>> {
    const its = this.queues.map((q) => q[Symbol.asyncIterator]());
    const heads = await Promise.all(its.map((it) => it.next()));
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i] as IteratorResult<string>;
        if (h.done) continue;
        if (best < 0 || h.value < ((heads[best] as IteratorResult<string>).value as string)) best = i;
      }
      if (best < 0) return;
      yield { queue: this.queues[best] as Q, name: (heads[best] as IteratorResult<string>).value as string };
      heads[best] = await (its[best] as AsyncIterator<string>).next();
    }
  }

  /** python-dirq's `first()`: `{queue, name}`, or undefined when every queue is empty. */
  async first(): Promise<SetEntry<Q> | undefined> {
    this.cursor = this[Symbol.asyncIterator]();
    return this.next();
  }

  async next(): Promise<SetEntry<Q> | undefined> {
    if (this.cursor === undefined) return undefined;
    const r = await this.cursor.next();
    if (r.done) {
      this.cursor = undefined;
      return undefined;
    }
    return r.value;
  }
}
