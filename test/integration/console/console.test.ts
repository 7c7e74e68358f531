/**
 * The browser console (/console) in Debian's Chromium driven by playwright-core, against a real
 * gateway process (embedded transcoder, admin token, recording on) and a real redis-server, with
 * the clip published over RTMP by ffmpeg in real time: sign-in keeps the token out of the URL and
 * storage; the live streams page shows the stream with a thumbnail and a playing preview (over
 * WHEP, and over HLS by choice), adds and removes an output and kicks the stream; the
 * recordings page lists its recording and plays it; the workers, accounts and publish pages
 * render. Every page is screenshotted into test-artifacts/console/ (git-ignored), plus the
 * live streams page at a phone's size.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { artifactDir } from '../../helpers/artifacts.ts';
import { launchChromium, type TestChromium } from '../../helpers/chromium.ts';
import { publish, startGateway, type RunningGateway } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { refusingPort } from '../../helpers/receivers.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';

const TOKEN = 'console-admin-token-7d2b';
const MANIFEST = 'console-demo';
/** Where the screenshots go (one PNG per page). */
const SCREENSHOT_DIR = artifactDir('console');

let redis: TestRedis;
let gateway: RunningGateway;
let browser: TestChromium;
let page: Page;
let publisher: ReturnType<typeof publish> | undefined;
let worker: FakeAiWorker;

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${gateway.httpUrl}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string> ?? {}) } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/**
 * Polls an expression in the page until it is truthy. (page.evaluate, not waitForFunction: the
 * console's Content-Security-Policy forbids the eval that waitForFunction's string form uses.)
 */
async function pageWaits(expression: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate<boolean>(`Boolean(${expression})`)) return;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not true within ${timeoutMs} ms: ${expression}\npage errors: ${browser.pageErrors.join('\n')}\ngateway log tail:\n${gateway.proc.lines.slice(-10).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  const clip = await clipWith2sGop(60);
  redis = await startRedis();
  gateway = await startGateway(redis.url, {
    MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN,
    MEDIAGATE_LADDER: 'P144p30fps16x9',
    MEDIAGATE_RECORDING_ENABLED: 'true',
    MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '500',
    MEDIAGATE_LOG_LEVEL: 'info',
    // A gateway without WHIP: the publish page says so (console-webrtc.test.ts publishes over
    // WHIP, to a gateway without WHEP). WHEP is on (the default): the preview uses it.
    MEDIAGATE_WEBRTC_WHIP_ENABLED: 'false',
  });
  worker = await startFakeAiWorker();
  const registered = await api('/api/workers', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'test/sd-turbo', warm: true, capacity: 4 }] }),
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.json));
  browser = await launchChromium();
  page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  publisher = publish(clip, gateway.rtmpUrl(MANIFEST));
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await browser?.close();
  await gateway?.stop();
  await worker?.close();
  await redis?.stop();
});

test('the console is served from the gateway with its npm packages and a script policy that allows only its own scripts', async () => {
  const res = await fetch(`${gateway.httpUrl}/console`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/, csp);
  assert.match(await res.text(), /"preact":"\/console\/vendor\/preact\.mjs"/);
  for (const file of ['preact.mjs', 'preact-hooks.mjs', 'htm.mjs', 'hls.mjs']) {
    const vendor = await fetch(`${gateway.httpUrl}/console/vendor/${file}`);
    assert.equal(vendor.status, 200, file);
    assert.match(vendor.headers.get('content-type') ?? '', /javascript/, file);
    await vendor.arrayBuffer();
  }
  // Only the mapped package files: nothing else of node_modules is reachable.
  assert.equal((await fetch(`${gateway.httpUrl}/console/vendor/..%2Fpackage.json`)).status, 404);
  assert.equal((await fetch(`${gateway.httpUrl}/console/vendor/express.js`)).status, 404);
});

test('signing in takes the admin token from a form and keeps it out of the URL, cookies and web storage', async () => {
  await page.goto(`${gateway.httpUrl}/console`);
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor({ timeout: 10_000 });
  await shot('login');
  // By keyboard: Enter in the field submits the form.
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.getByLabel('Admin token').press('Enter');
  await page.getByRole('navigation', { name: 'Console pages' }).waitFor({ timeout: 10_000 });
  assert.ok(!page.url().includes(TOKEN), page.url());
  const stored = await page.evaluate<string>('JSON.stringify([document.cookie, localStorage.length, sessionStorage.length, location.href])');
  assert.ok(!stored.includes(TOKEN), stored);
  assert.deepEqual(JSON.parse(stored).slice(0, 3), ['', 0, 0]);
});

/** Waits until the stream card's preview plays over `mode` (its time advancing past 1 s). */
async function previewPlays(mode: 'HLS' | 'WHEP'): Promise<void> {
  const at = `article[data-manifest-id="${MANIFEST}"]`;
  await pageWaits(`(() => { const v = document.querySelector('${at} video'); const m = document.querySelector('${at} .player-mode');
    return v && m && m.dataset.mode === '${mode}' && v.currentTime > 1 && v.readyState >= 2 && !v.paused
      && v.getVideoPlaybackQuality().totalVideoFrames > 10; })()`, 40_000, `the preview plays over ${mode}`).catch(async (err: Error) => {
    const state = await page.evaluate<string>(`(() => { const v = document.querySelector('${at} video'); const c = document.querySelector('${at} .player figcaption');
      return JSON.stringify({ caption: c && c.textContent, time: v && v.currentTime, ready: v && v.readyState, paused: v && v.paused, frames: v && v.getVideoPlaybackQuality().totalVideoFrames }); })()`);
    throw new Error(`${err.message}\npreview: ${state}`);
  });
}

test('the live streams page shows the RTMP stream with its thumbnail, renditions and a playing preview', async () => {
  const card = page.locator(`article[data-manifest-id="${MANIFEST}"]`);
  await card.waitFor({ timeout: 40_000 });
  // The thumbnail is the JPEG of a source segment (naturalWidth > 0 once it decoded).
  await pageWaits(`(() => { const img = document.querySelector('article[data-manifest-id="${MANIFEST}"] img.thumb'); return img && img.complete && img.naturalWidth > 0; })()`, 30_000, 'thumbnail');
  await card.getByRole('button', { name: 'Preview' }).click();
  // The gateway serves WHEP: the preview is the live source over WebRTC, decoded by the page.
  await previewPlays('WHEP');
  const renditions = await card.locator('table tbody th[scope=row]').allTextContents();
  assert.ok(renditions.includes('source'), renditions.join());
  assert.ok(renditions.length >= 2, `the ladder's rendition is listed too: ${renditions.join()}`);
  await shot('streams');
  // HLS by choice.
  await card.getByLabel('Preview over').selectOption('hls');
  await previewPlays('HLS');
  await page.setViewportSize({ width: 390, height: 844 });
  // Readable on a phone: nothing wider than the screen (wide tables scroll in their own box).
  assert.ok(await page.evaluate<boolean>('document.documentElement.scrollWidth <= 390'), 'no horizontal scrolling at 390 px');
  await shot('streams-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('an output is added and removed from the stream card', async () => {
  const card = page.locator(`article[data-manifest-id="${MANIFEST}"]`);
  const port = await refusingPort();
  await card.getByLabel('Target URL').fill(`rtmp://127.0.0.1:${port}/live/restream-secret`);
  await card.getByRole('button', { name: 'Add output' }).click();
  const item = card.locator('li.output');
  await item.waitFor({ timeout: 10_000 });
  const shown = await item.textContent() ?? '';
  assert.ok(!shown.includes('restream-secret'), `the target's key is shown redacted: ${shown}`);
  const listed = await api(`/api/streams/${MANIFEST}/outputs`);
  assert.equal(listed.json.outputs.length, 1, JSON.stringify(listed.json));
  await shot('streams-output');
  await item.getByRole('button', { name: /^Remove output/ }).click();
  await item.waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal((await api(`/api/streams/${MANIFEST}/outputs`)).json.outputs.length, 0);
});

test('kicking the stream disconnects its RTMP publisher', async () => {
  const card = page.locator(`article[data-manifest-id="${MANIFEST}"]`);
  await card.getByRole('button', { name: `Kick ${MANIFEST}` }).click();
  await card.getByRole('button', { name: 'Confirm kick' }).click();
  const exit = await Promise.race([publisher!.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000))]);
  assert.notEqual(exit, 'running', 'ffmpeg sees the connection close');
  await card.waitFor({ state: 'detached', timeout: 30_000 });
  const stream = await api(`/api/streams/${MANIFEST}`);
  assert.equal(stream.json.state, 'ended');
});

test('the recordings page lists the stream\'s recording, plays it and links its MP4 downloads', async () => {
  await page.getByRole('link', { name: 'Recordings' }).click();
  const row = page.locator('table.recordings tbody tr', { hasText: MANIFEST });
  await row.waitFor({ timeout: 20_000 });
  const { json } = await api(`/api/streams/${MANIFEST}/recordings`);
  assert.equal(json.recordings.length, 1);
  assert.equal(await row.getAttribute('data-session'), json.recordings[0].session);
  // Ready once its last segments are transcoded and the VOD playlists written.
  await row.getByRole('button', { name: /^Play recording/ }).waitFor({ timeout: 40_000 });
  const href = await row.locator('a.download').first().getAttribute('href');
  assert.match(href ?? '', /\/recordings\/console-demo\/[0-9a-z]+\/[A-Za-z0-9_-]+\.mp4$/);
  const mp4 = await fetch(href!);
  assert.equal(mp4.status, 200);
  assert.ok((await mp4.arrayBuffer()).byteLength > 10_000);
  await row.getByRole('button', { name: /^Play recording/ }).click();
  await pageWaits(`(() => { const v = document.querySelector('video'); return v && v.currentTime > 1; })()`, 30_000, 'the recording plays');
  await shot('recordings');
});

test('the workers page lists the AI worker with its health and capacity, this gateway and its embedded transcoder', async () => {
  await page.getByRole('link', { name: 'Workers' }).click();
  const row = page.getByRole('table', { name: 'AI workers' }).locator('tbody tr', { hasText: worker.url });
  await row.filter({ hasText: 'healthy' }).waitFor({ timeout: 15_000 });
  const cells = await row.locator('td').allTextContents();
  assert.match(cells[0]!, /^healthy OK/, cells.join(' | '));
  assert.equal(cells[1], '4', `capacity: ${cells.join(' | ')}`);
  assert.match(cells[3]!, /text-to-image test\/sd-turbo\s+warm 0\/4/, cells.join(' | '));
  await page.getByRole('table', { name: 'Gateways' }).waitFor({ timeout: 10_000 });
  const gateways = await page.getByRole('table', { name: 'Gateways' }).locator('tbody tr').count();
  assert.equal(gateways, 1);
  assert.equal(await page.getByRole('table', { name: 'Transcoders' }).locator('tbody tr').count(), 1);
  await shot('workers');
});

test('the accounts page shows the local account\'s balance and its charges for the stream and an AI request', async () => {
  // Anonymous on loopback: charged to the local account, as the stream was.
  const ai = await fetch(`${gateway.httpUrl}/text-to-image`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'a red square', model_id: 'test/sd-turbo' }),
  });
  assert.equal(ai.status, 200, await ai.text());
  await page.getByRole('link', { name: 'Accounts' }).click();
  const row = page.locator('table.accounts tbody tr[data-account-id="local"]');
  await row.waitFor({ timeout: 10_000 });
  const { json } = await api('/api/accounts/local');
  const balance = BigInt(json.balance).toLocaleString('en-US');
  assert.equal((await row.locator('td.num').textContent())?.replace(/\D/g, ''), balance.replace(/\D/g, ''));
  await page.getByRole('table', { name: /^By stream/ }).locator('tbody th', { hasText: MANIFEST }).waitFor({ timeout: 10_000 });
  await page.getByRole('table', { name: /^By AI pipeline/ }).locator('tbody th', { hasText: 'text-to-image' }).waitFor({ timeout: 10_000 });
  const heights = await page.evaluate<string>(`JSON.stringify([...document.querySelectorAll('figure.chart rect.bar')].map((r) => Number(r.getAttribute('height'))))`);
  assert.ok((JSON.parse(heights) as number[]).some((h) => h > 0), `the chart has a bar for this hour's charges: ${heights}`);
  await shot('accounts');
});

test('the publish page takes a stream key and says so when the gateway does not serve WHIP', async () => {
  await page.getByRole('link', { name: 'Publish' }).click();
  await page.getByLabel('Stream key').fill('console-camera');
  await page.getByRole('button', { name: 'Start publishing' }).click();
  await page.getByRole('alert').filter({ hasText: 'does not serve WHIP publishing' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('.publish-state').textContent(), 'idle');
  // The camera was released again.
  assert.equal(await page.evaluate<boolean>(`document.querySelector('video[aria-label="Camera preview"]').srcObject === null`), true);
  await shot('publish');
});

test('signing out forgets the token: the login form is back and the pages are gone', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin token').waitFor({ timeout: 5000 });
  assert.equal(await page.getByRole('navigation', { name: 'Console pages' }).count(), 0);
});
