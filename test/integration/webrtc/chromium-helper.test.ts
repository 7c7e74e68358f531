/**
 * The browser-test helper itself: Chromium starts with the test flags and a fresh profile,
 * a page on 127.0.0.1 gets the fake camera and microphone without a prompt, and `close()`
 * leaves no Chromium process and no profile directory behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHROMIUM_TEST_ARGS, launchChromium } from '../../helpers/chromium.ts';

test('test Chromium: fake camera and microphone on a loopback page; close leaves no process or profile', { timeout: 60_000 }, async () => {
  const server = createServer((_req, res) => { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><title>t</title>'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const browser = await launchChromium();
  try {
    const pids = browser.processIds();
    assert.ok(pids.length > 0, 'a Chromium process runs with the fresh profile');
    const cmdlines = pids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
    const main = cmdlines.find((args) => !args.some((a) => a.startsWith('--type=')));
    assert.ok(main, 'the browser process is found');
    for (const flag of CHROMIUM_TEST_ARGS) assert.ok(main.includes(flag), `browser started with ${flag}`);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    // Page code is a string: the project's tsconfig has no DOM lib.
    const tracks = await page.evaluate<Array<{ kind: string; state: string; width: number }>>(`(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
      const out = stream.getTracks().map((t) => ({ kind: t.kind, state: t.readyState, width: t.getSettings().width ?? 0 }));
      stream.getTracks().forEach((t) => t.stop());
      return out;
    })()`);
    assert.deepEqual(tracks.map((t) => t.kind).sort(), ['audio', 'video']);
    assert.ok(tracks.every((t) => t.state === 'live'));
    assert.equal(tracks.find((t) => t.kind === 'video')!.width, 640);
  } finally {
    await browser.close();
    await browser.close();
    server.close();
  }
  assert.equal(existsSync(browser.userDataDir), false, 'profile directory removed');
  assert.deepEqual(browser.processIds(), [], 'no Chromium process left');
});
