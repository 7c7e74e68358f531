/**
 * The browser console at `/console` (docs/operations.md, "The console"): one HTML page, the
 * console's own ES modules from src/console/ under `/console/app/`, and four files of
 * installed npm packages under `/console/vendor/` (preact, preact/hooks, htm, hls.js), tied
 * together by an import map. No bundler, no build step, no CDN: what `npm ci` installed is
 * what the browser runs, so the console works offline and behind a firewall.
 *
 * The page is served with a Content-Security-Policy that allows scripts only from this
 * gateway (plus the inline import map, by its SHA-256 hash), so an injected script cannot
 * read the admin token the page keeps in memory; media and API requests may also go to
 * `http.publicUrl` and `storage.publicBaseUrl`, where playlists and segments can live.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { safeOrigin } from './request-guard.ts';

const require = createRequire(import.meta.url);
const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));

/**
 * Bare specifiers the console imports → the ES module file of the installed package. Each
 * package's CommonJS entry (`require.resolve`) sits beside its `.mjs` twin in these four.
 */
const VENDOR_MODULES = {
  'preact': { file: 'preact.mjs', cjs: 'preact' },
  'preact/hooks': { file: 'preact-hooks.mjs', cjs: 'preact/hooks' },
  'htm': { file: 'htm.mjs', cjs: 'htm' },
  'hls.js': { file: 'hls.mjs', cjs: 'hls.js' },
} as const;

export interface ConsoleRouterOptions {
  /** Origins besides the page's own that playlists, segments and thumbnails may come from (publicUrl, storage.publicBaseUrl). */
  mediaOrigins?: readonly string[];
}

/** `{ 'preact.mjs': '/…/node_modules/preact/dist/preact.mjs', … }`. @throws Error naming a missing package file. */
export function vendorFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const { file, cjs } of Object.values(VENDOR_MODULES)) {
    const path = require.resolve(cjs).replace(/\.c?js$/, '.mjs');
    if (!existsSync(path)) throw new Error(`the console needs ${path} (package ${cjs}); run npm ci`);
    files[file] = path;
  }
  return files;
}

/** The import map of the console page, as the JSON text put inline (its hash goes in the CSP). */
export function importMapJson(): string {
  const imports: Record<string, string> = {};
  for (const [specifier, { file }] of Object.entries(VENDOR_MODULES)) imports[specifier] = `/console/vendor/${file}`;
  return JSON.stringify({ imports });
}

/** The page's Content-Security-Policy: scripts from 'self' and the import map's hash only. */
export function consolePolicy(importMap: string, mediaOrigins: readonly string[]): string {
  const hash = createHash('sha256').update(importMap).digest('base64');
  const media = [...new Set(mediaOrigins.map(safeOrigin).filter((o): o is string => o !== undefined))].join(' ');
  const withMedia = (base: string): string => (media ? `${base} ${media}` : base);
  return [
    "default-src 'self'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    withMedia("img-src 'self' data: blob:"),
    withMedia("media-src 'self' blob:"),
    withMedia("connect-src 'self'"),
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function page(importMap: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>mediagate console</title>
<link rel="stylesheet" href="/console/app/console.css">
<script type="importmap">${importMap}</script>
<script type="module" src="/console/app/main.js"></script>
</head>
<body>
<div id="console"><noscript>The mediagate console needs JavaScript.</noscript></div>
</body>
</html>
`;
}

/** Routes `/console`, `/console/app/*` (src/console/) and `/console/vendor/*` (the four package files). */
export function createConsoleRouter(options: ConsoleRouterOptions = {}): Router {
  const router = Router();
  const importMap = importMapJson();
  const html = page(importMap);
  const policy = consolePolicy(importMap, options.mediaOrigins ?? []);
  const vendor = vendorFiles();
  const securityHeaders = (res: Response): void => {
    res.setHeader('Content-Security-Policy', policy);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
  };
  router.get(['/console', '/console/'], (_req: Request, res: Response) => {
    securityHeaders(res);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  });
  router.get('/console/vendor/:file', (req: Request, res: Response, next) => {
    const path = vendor[req.params['file'] as string];
    if (path === undefined) {
      next();
      return;
    }
    securityHeaders(res);
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('text/javascript').sendFile(path);
  });
  router.use('/console/app', (_req: Request, res: Response, next) => {
    securityHeaders(res);
    res.setHeader('Cache-Control', 'no-cache');
    next();
  }, express.static(CONSOLE_DIR, { index: false, dotfiles: 'ignore', fallthrough: true, extensions: false }));
  return router;
}
