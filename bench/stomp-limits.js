// Measures what RabbitMQ and ActiveMQ accept in a STOMP frame's headers (docs/stompclt.md, "Frame limits"): the
// longest header line (`name:value`, bytes) and the most headers of a SEND that the broker takes and delivers intact.
// Each probe is a fresh connection: SUBSCRIBE (with receipt), then one SEND with a receipt; accepted means RECEIPT and
// then the MESSAGE with the header intact. A binary search between a size accepted and one refused gives the limit.
// Brokers and the raw STOMP client: @msgbricks/test-support.
//
//   node bench/stomp-limits.js [--max-line BYTES] [--max-headers N] [--only rabbitmq|activemq]

const { startActiveMQ, startRabbitMQ, stompConnect } = require('../packages/test-support');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : process.argv[i + 1];
}
const MAX_LINE = Number(arg('--max-line', 1024 * 1024));
const MAX_HEADERS = Number(arg('--max-headers', 10000));
const ONLY = arg('--only', undefined);

/**
 * One probe: `extra` headers on a SEND to a fresh queue, over test-support's raw STOMP client (no client library
 * limits in the way). Resolves to {ok: true, count} when the broker receipted it and delivered it with the headers
 * intact (`count`: the headers of the MESSAGE), else {ok: false, why}; `server` is the CONNECTED frame's.
 */
async function probe(broker, extra, tag) {
  const destination = `/queue/msgbricks.limits.${tag}`;
  let c;
  try {
    c = await stompConnect({ host: broker.host, port: broker.ports.stomp, login: broker.user, passcode: broker.password });
  } catch (err) {
    return { ok: false, why: `cannot connect: ${err.message}` };
  }
  const server = c.connected.headers.server;
  const next = async (what) => {
    const f = await c.next(20000);
    if (f.command === 'ERROR') throw new Error(`ERROR: ${f.headers.message ?? ''} ${f.body.trim().split('\n')[0]}`);
    if (what !== undefined && f.command !== what) throw new Error(`${f.command} instead of ${what}`);
    return f;
  };
  try {
    c.send('SUBSCRIBE', { destination, id: 's', ack: 'auto', receipt: 'sub' });
    await next('RECEIPT');
    c.send('SEND', { destination, receipt: 'send', ...extra }, 'body');
    // The MESSAGE may come before the SEND's RECEIPT (RabbitMQ).
    const first = await next(undefined);
    const m = first.command === 'MESSAGE' ? first : await next('MESSAGE');
    if (first.command === 'MESSAGE') await next('RECEIPT');
    const intact = Object.entries(extra).every(([k, v]) => m.headers[k] === v);
    return intact ? { ok: true, count: Object.keys(m.headers).length, server } : { ok: false, why: 'delivered changed', server };
  } catch (err) {
    return { ok: false, why: err.message, server };
  } finally {
    c.socket.destroy();
  }
}

/** One header whose line `x-long:VALUE` is `n` bytes. */
const longLine = (n) => ({ 'x-long': 'v'.repeat(n - 'x-long:'.length) });
/** `n` headers `h0:v0`... */
const manyHeaders = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, `v${i}`]));

/** The largest n in [lo, hi] for which make(n) is accepted (lo must be), by binary search; hi itself if it is. */
async function largest(broker, lo, hi, make, tag) {
  let refusedWhy;
  let delivered;
  const top = await probe(broker, make(hi), `${tag}-${hi}`);
  if (top.ok) return { limit: hi, delivered: top.count, beyond: `accepted up to ${hi} (the largest tried)` };
  refusedWhy = top.why;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const r = await probe(broker, make(mid), `${tag}-${mid}`);
    if (r.ok) {
      lo = mid;
      delivered = r.count;
    } else {
      hi = mid;
      refusedWhy = r.why;
    }
  }
  return { limit: lo, delivered, beyond: `${hi} refused: ${refusedWhy}` };
}

async function measure(name, start) {
  const broker = await start();
  try {
    const sanity = await probe(broker, { 'x-a': 'b' }, 'sanity');
    if (!sanity.ok) throw new Error(`${name}: a plain SEND is not delivered: ${sanity.why}`);
    const line = await largest(broker, 16, MAX_LINE, longLine, 'line');
    const headers = await largest(broker, 1, MAX_HEADERS, manyHeaders, 'headers');
    const withOwn = Object.keys({ destination: 1, receipt: 1, 'content-length': 1 }).length;
    console.log(`${name} (${sanity.server})`);
    console.log(`  longest header line accepted: ${line.limit} bytes (${line.beyond})`);
    console.log(
      `  most headers accepted: ${headers.limit} + ${withOwn} (destination, receipt, content-length) = ${headers.limit + withOwn}, ` +
        `delivered with ${headers.delivered ?? '?'} headers (${headers.beyond})`,
    );
  } finally {
    await broker.stop();
  }
}

(async () => {
  if (ONLY === undefined || ONLY === 'rabbitmq') await measure('RabbitMQ', startRabbitMQ);
  if (ONLY === undefined || ONLY === 'activemq') await measure('ActiveMQ', startActiveMQ);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
