/**
 * The console on a loopback gateway with no admin token: the admin APIs answer without one
 * there, so the console opens without a login form and says it is open on loopback
 * (Chromium driven by playwright-core, a real gateway process and redis-server).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium, type TestChromium } from '../../helpers/chromium.ts';
import { startGateway, type RunningGateway } from '../../helpers/gateway-process.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';

let redis: TestRedis;
let gateway: RunningGateway;
let browser: TestChromium;

before(async () => {
  redis = await startRedis();
  gateway = await startGateway(redis.url, { MEDIAGATE_LOG_LEVEL: 'info' });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await redis?.stop();
});

test('a loopback gateway without an admin token opens the console without a login form', async () => {
  const page = await browser.newPage();
  await page.goto(`${gateway.httpUrl}/console#/workers`);
  await page.getByRole('navigation', { name: 'Console pages' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.getByLabel('Admin token').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);
  assert.equal(await page.getByText('open on loopback').count(), 1);
  // The hash names the page: the workers page, with this gateway listed.
  await page.getByRole('table', { name: 'Gateways' }).locator('tbody tr').first().waitFor({ timeout: 10_000 });
  assert.equal(await page.getByRole('link', { name: 'Workers' }).getAttribute('aria-current'), 'page');
  // Keyboard: the first Tab reaches the skip link, Enter moves focus to the page's content.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate<string>('document.activeElement.textContent'), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.deepEqual(JSON.parse(await page.evaluate<string>('JSON.stringify([document.activeElement.id, location.hash])')), ['main', '#/workers']);
  await page.getByRole('link', { name: 'Live streams' }).click();
  await page.getByText('No live streams.').waitFor({ timeout: 10_000 });
  assert.deepEqual(browser.pageErrors.filter((e) => e.startsWith('pageerror')), []);
});
