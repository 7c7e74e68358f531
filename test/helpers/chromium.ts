/**
 * Debian's Chromium (`/usr/bin/chromium`) driven by playwright-core for browser tests:
 * headless, no sandbox, no GPU, no QUIC and none of the background traffic a first run makes
 * (component updates, sync, field trials; on a closed network it would retry them forever),
 * a fake camera and microphone that are granted without a prompt
 * (`--use-fake-ui-for-media-stream --use-fake-device-for-media-stream`), and WebRTC allowed to
 * use loopback candidates (`--allow-loopback-in-peer-connection`), so a page can publish to
 * or play from a gateway on 127.0.0.1.
 *
 * Each launch gets a fresh profile directory under the OS temp dir, removed by `close()`
 * together with the browser process (idempotent). A missing Chromium fails the test (no skip).
 *
 * Pages need a secure context for `getUserMedia`: load them from `http://127.0.0.1:<port>/…`
 * (a potentially trustworthy origin), not `about:blank` or `data:` URLs. The project's
 * tsconfig has no DOM lib: pass page code to `page.evaluate` as a string expression, e.g.
 * `` page.evaluate<number>(`(async () => { ... })()`) ``.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's package path; `make test` installs it when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The flags every test Chromium starts with (besides the profile dir playwright passes). */
export const CHROMIUM_TEST_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export interface ChromiumOptions {
  /** Extra command-line flags, e.g. `--use-file-for-fake-video-capture=<file.y4m>`. */
  readonly extraArgs?: readonly string[];
  /** Browser executable; default {@link CHROMIUM_PATH}. */
  readonly executablePath?: string;
  /** Default 30 000 ms (playwright's launch timeout). */
  readonly launchTimeoutMs?: number;
}

export interface TestChromium {
  /** The persistent context of the fresh profile (one per launch). */
  readonly context: BrowserContext;
  /** The profile directory; gone after `close()`. */
  readonly userDataDir: string;
  /** PIDs of the processes started with this profile (browser, renderers, GPU/utility): empty after `close()`. */
  processIds(): number[];
  /** A new tab; its console errors and page errors are collected in {@link TestChromium.pageErrors}. */
  newPage(): Promise<Page>;
  /** `console.error` messages and uncaught page errors of every tab, in order (for failure messages). */
  readonly pageErrors: string[];
  /** Closes the browser and removes the profile directory. Idempotent. */
  close(): Promise<void>;
}

/** Starts Chromium with {@link CHROMIUM_TEST_ARGS} and a fresh temporary profile. */
export async function launchChromium(options: ChromiumOptions = {}): Promise<TestChromium> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  if (!existsSync(executablePath)) throw new Error(`Chromium not found at ${executablePath} (make test installs Debian's chromium)`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'mg-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_TEST_ARGS, ...(options.extraArgs ?? [])],
      timeout: options.launchTimeoutMs ?? 30_000,
    });
  } catch (error) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
  const pageErrors: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`); });
    page.on('pageerror', (error) => { pageErrors.push(`pageerror: ${error.message}`); });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  let closing: Promise<void> | undefined;
  return {
    context,
    userDataDir,
    processIds: () => processesWithArgument(`--user-data-dir=${userDataDir}`),
    pageErrors,
    newPage: () => context.newPage(),
    close: () => {
      closing ??= (async () => {
        try {
          await context.close();
        } finally {
          rmSync(userDataDir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
  };
}

/** PIDs whose command line has `argument` (read from /proc; Chromium's children inherit the profile flag). */
export function processesWithArgument(argument: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.includes(argument)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
