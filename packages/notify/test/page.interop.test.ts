// The gateway's page in a real browser (Debian's chromium driven by playwright-core): the repositories with their
// last revision, and a new revision shown within a second of its publication.
import * as path from 'node:path';
import { Gateway, StompBackend } from '@msgbricks/notify';
import type { Broker } from '@msgbricks/test-support';
import { CHROMIUM, removeDir, startRabbitMQ, tempDir } from '@msgbricks/test-support';
import { type Browser, chromium } from 'playwright-core';
import { body, publish } from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
let tmp: string;
let gateway: Gateway;
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
  // As root (CI), Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
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

async function until(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
