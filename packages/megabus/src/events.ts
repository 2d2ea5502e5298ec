/** What Publisher and Consumer report (libraries never print: a caller logs these). */
export type MegabusEvent =
  /** The alias was resolved: the brokers now in it. */
  | { readonly type: 'resolved'; readonly brokers: readonly string[] }
  /** Resolving failed; the last list is kept. */
  | { readonly type: 'resolve-failed'; readonly error: Error }
  /** A broker connection is up (publisher: the broker now used; consumer: one more broker consumed from). */
  | { readonly type: 'connected'; readonly broker: string }
  /** A broker failed a send or a connection: the publisher goes on with the next one. */
  | { readonly type: 'broker-failed'; readonly broker: string; readonly error: Error }
  /** The publisher leaves a broker it used long enough (reconnect_interval), so that new brokers get traffic. */
  | { readonly type: 'rotated'; readonly broker: string }
  /** No broker took a message: it is in the spool (element `name`). */
  | { readonly type: 'spooled'; readonly name: string }
  /** The spool is empty again: sends go straight to the brokers. */
  | { readonly type: 'spool-drained'; readonly forwarded: number }
  /** A spooled element was left in place: a broker refused it for good, or it is not a message. */
  | { readonly type: 'spool-skipped'; readonly name: string; readonly error: Error }
  /** Consumer: a broker joined the alias. */
  | { readonly type: 'broker-added'; readonly broker: string }
  /** Consumer: a broker left the alias; it is consumed from until drained. */
  | { readonly type: 'draining'; readonly broker: string }
  /** Consumer: a broker that left the alias came back before it was drained. */
  | { readonly type: 'undrained'; readonly broker: string }
  /** Consumer: a broker that left the alias delivered nothing for drain_quiet: its connection is closed. */
  | { readonly type: 'drained'; readonly broker: string }
  /** Consumer: the handler (or the spool write) failed: the message is given back to its broker. */
  | { readonly type: 'handler-failed'; readonly broker: string; readonly error: Error }
  /** Consumer: a message the selectors (or the filter) did not select was acknowledged without reaching the handler. */
  | { readonly type: 'filtered'; readonly broker: string }
  /** An event of one broker connection (the agent's connection events: connect-failed, lost, reconnected...). */
  | { readonly type: 'broker-event'; readonly broker: string; readonly event: { readonly type: string } };

export type MegabusEventListener = (event: MegabusEvent) => void;
