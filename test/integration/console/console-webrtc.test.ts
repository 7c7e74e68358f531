/**
 * The console's WebRTC paths in Debian's Chromium (playwright-core, fake camera and
 * microphone) against a real gateway process and redis-server on loopback: the publish page
 * sends the camera over WHIP and the stream goes live in the control API; the live streams
 * page of a second tab previews it, over HLS since this gateway serves no WHEP (frames
 * decoded by the video element); Stop ends the publish and the stream.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { artifactDir } from '../../helpers/artifacts.ts';
import { launchChromium, type TestChromium } from '../../helpers/chromium.ts';
import { startGateway, type RunningGateway } from '../../helpers/gateway-process.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';

const CAMERA = 'console-camera';
const SCREENSHOT_DIR = artifactDir('console');

let redis: TestRedis;
let gateway: RunningGateway;
let browser: TestChromium;
let publisher: Page;
let viewer: Page;

interface ListedStream { manifestID: string; state: string; segments: number }

async function stream(): Promise<ListedStream | undefined> {
  const res = await fetch(`${gateway.httpUrl}/api/streams/${CAMERA}`);
  return res.status === 200 ? await res.json() as ListedStream : undefined;
}

async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms\npage errors: ${browser.pageErrors.join('\n')}\ngateway log tail:\n${gateway.proc.lines.slice(-12).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  redis = await startRedis();
  gateway = await startGateway(redis.url, {
    MEDIAGATE_LADDER: 'P144p30fps16x9', MEDIAGATE_LOG_LEVEL: 'info',
    // Without WHEP, so the preview's fallback to HLS is tested here (console.test.ts previews over WHEP).
    MEDIAGATE_WEBRTC_WHEP_ENABLED: 'false',
  });
  browser = await launchChromium();
  publisher = await browser.newPage();
  viewer = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await redis?.stop();
});

test('the publish page sends the camera over WHIP and the stream goes live', async () => {
  await publisher.goto(`${gateway.httpUrl}/console#/publish`);
  await publisher.getByLabel('Stream key').fill(CAMERA);
  await publisher.getByRole('button', { name: 'Start publishing' }).click();
  await until(async () => (await publisher.locator('.publish-state').textContent()) === 'connected', 20_000, 'WHIP connected');
  const live = await until(async () => { const s = await stream(); return s && s.state === 'live' && s.segments >= 2 && s; }, 30_000, 'the stream lists segments');
  assert.equal(live.manifestID, CAMERA);
  await publisher.screenshot({ path: join(SCREENSHOT_DIR, 'publish-whip.png'), fullPage: true });
});

test('the live streams page previews the WHIP stream over HLS when the gateway serves no WHEP', async () => {
  await viewer.goto(`${gateway.httpUrl}/console#/streams`);
  const card = viewer.locator(`article[data-manifest-id="${CAMERA}"]`);
  await card.waitFor({ timeout: 15_000 });
  await card.getByRole('button', { name: 'Preview' }).click();
  const at = `article[data-manifest-id="${CAMERA}"]`;
  // This gateway serves no WHEP: the preview says so and plays HLS (frames decoded by the video element).
  await until(() => viewer.evaluate<boolean>(`(() => { const v = document.querySelector('${at} video'); const m = document.querySelector('${at} .player-mode');
    return Boolean(v && m && m.dataset.mode === 'HLS' && v.currentTime > 1 && v.getVideoPlaybackQuality().totalVideoFrames > 10); })()`), 30_000, 'the preview decodes frames');
  assert.match(await card.locator('.player figcaption').textContent() ?? '', /WHEP is not served by this gateway; playing HLS/);
  await viewer.screenshot({ path: join(SCREENSHOT_DIR, 'streams-whip.png'), fullPage: true });
});

test('Stop on the publish page ends the WHIP publish and the stream', async () => {
  await publisher.getByRole('button', { name: 'Stop' }).click();
  assert.equal(await publisher.locator('.publish-state').textContent(), 'idle');
  await until(async () => (await stream())?.state === 'ended', 20_000, 'the stream ends');
});
