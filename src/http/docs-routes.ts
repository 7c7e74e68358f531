/**
 * API documentation: the specs themselves (`/openapi.yaml` for the AI API, `/openapi/<name>.yaml`
 * for the others) and a browsable page at `/docs` rendered by Swagger UI from the local
 * swagger-ui-dist package (no CDN, so it works offline and behind a firewall).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';

const require = createRequire(import.meta.url);
const OPENAPI_DIR = fileURLToPath(new URL('../../openapi/', import.meta.url));

/** The spec files served, in the order the docs page lists them. */
export const SPECS = [
  { name: 'AI API', file: 'ai.yaml', url: '/openapi.yaml' },
  { name: 'Control API', file: 'control.yaml', url: '/openapi/control.yaml' },
] as const;

function page(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mediagate API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body></html>
`;
}

function initScript(): string {
  return `window.ui = SwaggerUIBundle({ urls: ${JSON.stringify(SPECS.map((s) => ({ name: s.name, url: s.url })))},
  dom_id: '#docs', presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });\n`;
}

export function createDocsRouter(): Router {
  const router = Router();
  const assets = dirname(require.resolve('swagger-ui-dist/package.json'));
  for (const spec of SPECS) {
    router.get(spec.url, (_req: Request, res: Response) => {
      res.type('application/yaml').sendFile(join(OPENAPI_DIR, spec.file));
    });
  }
  router.get('/docs', (_req: Request, res: Response) => {
    res.type('html').send(page());
  });
  router.get('/docs/init.js', (_req: Request, res: Response) => {
    res.type('application/javascript').send(initScript());
  });
  router.use('/docs/assets', express.static(assets, { index: false, fallthrough: false }));
  return router;
}
