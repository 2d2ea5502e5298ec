// The gateway's page in a real browser (Debian's chromium driven by playwright-core): the repositories with their
// last revision, and a new revision shown within a second of its publication.
import * as path from 'node:path';
import { Gateway, StompBackend } from '@msgbricks/notify';
import type { Broker } from '@msgbricks/test-support';
import { CHROMIUM, removeDir, startRabbitMQ, tempDir } from '@msgbricks/test-support';
import { type Browser, chromium } from 'playwright-core';
import { body, publish, request } from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
let tmp: string;
let gateway: Gateway;
let guarded: Gateway;
let browser: Browser;

beforeAll(async () => {
  rabbit = await startRabbitMQ({ exchanges: ['repository.activity'] });
  tmp = tempDir('notify-page-');
  const backend = new StompBackend({
    uri: `stomp://${rabbit.host}:${rabbit.ports.stomp}`,
    user: rabbit.user,
    password: rabbit.password,
    node: 'page',
  });
  gateway = await Gateway.start({
    port: 0,
    cacheDir: path.join(tmp, 'cache'),
    backend,
    publish: { '*': { tokens: { ci: 'secret-token' } } },
  });
  // The same broker, another node whose subscribers need a token.
  guarded = await Gateway.start({
    port: 0,
    cacheDir: path.join(tmp, 'cache-guarded'),
    backend: new StompBackend({
      uri: `stomp://${rabbit.host}:${rabbit.ports.stomp}`,
      user: rabbit.user,
      password: rabbit.password,
      node: 'page-guarded',
    }),
    publish: { '*': { tokens: { ci: 'secret-token' } } },
    subscribeTokens: ['page-token'],
  });
  // As root (CI), Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await guarded?.close();
  await rabbit?.stop();
  if (tmp) removeDir(tmp);
});

test('page - lists the repositories and shows a new revision within a second of its publication', async () => {
  expect((await publish(gateway.url, body('alpha.example.org', 1))).status).toBe(200);
  await until(() => gateway.cache.get('alpha.example.org') !== undefined);
  const page = await browser.newPage();
  const root = gateway.url.replace(/\/api\/v1$/, '/');
  await page.goto(root);
  await page.waitForSelector('#state:text("live")');
  const revision = (repo: string) => page.locator(`tr[data-repository="${repo}"] td.revision`);
  // Evaluated in the page (a string: this file has no DOM types).
  const shows = (repo: string, rev: number) =>
    `document.querySelector('tr[data-repository="${repo}"] td.revision')?.textContent === '${rev}'`;
  await page.waitForFunction(shows('alpha.example.org', 1));
  for (const [repo, rev] of [
    ['beta.example.org', 5],
    ['alpha.example.org', 2],
  ] as const) {
    const t0 = Date.now();
    expect((await publish(gateway.url, body(repo, rev))).status).toBe(200);
    await page.waitForFunction(shows(repo, rev), undefined, { polling: 'raf', timeout: 5000 });
    // From before the POST to the DOM: publish, broker, cache, SSE feed, page script.
    expect(Date.now() - t0).toBeLessThan(1000);
  }
  expect(await revision('alpha.example.org').textContent()).toBe('2');
  // Sorted by name, the feed newest first.
  expect(await page.locator('#repositories tr td.name').allTextContents()).toEqual(['alpha.example.org', 'beta.example.org']);
  const feed = await page.locator('#feed li').allTextContents();
  expect(feed).toHaveLength(2);
  expect(feed[0]).toContain('alpha.example.org  revision 2');
  if (process.env.NOTIFY_PAGE_SCREENSHOT) await page.screenshot({ path: process.env.NOTIFY_PAGE_SCREENSHOT });
  await page.close();
});

test('page - with subscribe tokens: a token from #token= or ?token= (then out of the address bar) or from the field; a wrong one refused', async () => {
  expect((await publish(guarded.url, body('gamma.example.org', 1))).status).toBe(200);
  await until(() => guarded.cache.get('gamma.example.org') !== undefined);
  const root = guarded.url.replace(/\/api\/v1$/, '/');
  const shows = (repo: string, rev: number) =>
    `document.querySelector('tr[data-repository="${repo}"] td.revision')?.textContent === '${rev}'`;
  // The gateway itself: the feed and the list need the token, as a header or ?token=.
  expect((await request(`${guarded.url}/repositories`)).status).toBe(401);
  expect((await request(`${guarded.url}/repositories?token=page-token`)).status).toBe(200);
  expect((await request(`${guarded.url}/repositories`, { headers: { Authorization: 'Bearer page-token' } })).status).toBe(200);

  // In the fragment: the page goes live, the token leaves the address bar, a new revision shows within a second.
  const context = await browser.newContext();
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  await page.goto(`${root}#token=page-token`);
  await page.waitForSelector('#state:text("live")');
  expect(page.url()).toBe(root);
  await page.waitForFunction(shows('gamma.example.org', 1));
  const t0 = Date.now();
  expect((await publish(guarded.url, body('gamma.example.org', 2))).status).toBe(200);
  await page.waitForFunction(shows('gamma.example.org', 2), undefined, { polling: 'raf', timeout: 5000 });
  expect(Date.now() - t0).toBeLessThan(1000);
  // Only the EventSource carries it in a URL; the list went with a header.
  expect(requested.filter((u) => u.includes('page-token'))).toEqual([`${guarded.url}/notifications/feed?token=page-token`]);
  // A reload in the same tab keeps it (sessionStorage), without it in the URL.
  await page.reload();
  await page.waitForSelector('#state:text("live")');
  await page.close();

  // No token: the field is shown; a wrong token is refused; the right one connects.
  const fresh = await (await browser.newContext()).newPage();
  await fresh.goto(root);
  await fresh.waitForSelector('#state:text("a token is required")');
  expect(await fresh.isVisible('#token-form')).toBe(true);
  expect(await fresh.locator('#repositories tr').count()).toBe(0);
  await fresh.fill('#token', 'wrong-token');
  await fresh.click('#token-form button');
  await fresh.waitForSelector('#state:text("the token was refused")');
  await fresh.fill('#token', 'page-token');
  await fresh.click('#token-form button');
  await fresh.waitForSelector('#state:text("live")');
  expect(await fresh.isVisible('#token-form')).toBe(false);
  await fresh.waitForFunction(shows('gamma.example.org', 2));
  await fresh.close();

  // ?token= works too and is taken out of the address bar.
  const query = await (await browser.newContext()).newPage();
  await query.goto(`${root}?token=page-token`);
  await query.waitForSelector('#state:text("live")');
  expect(query.url()).toBe(root);
  await query.close();
  await context.close();
});

async function until(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
