import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_DOC_PATH, renderConfigDoc } from '../../../scripts/gen-config-doc.ts';
import { environmentVariables } from '../../../src/config/config.ts';
import { aiWorkerEnvironmentVariables } from '../../../src/ai-worker/config.ts';

test('docs/config.md is what scripts/gen-config-doc.ts generates from the declarations (run `node --import tsx scripts/gen-config-doc.ts` after changing a setting)', () => {
  const committed = readFileSync(CONFIG_DOC_PATH, 'utf8');
  assert.equal(committed, renderConfigDoc(), 'docs/config.md is stale: run `node --import tsx scripts/gen-config-doc.ts`');
});

test('the generated reference names every environment variable of both programs, with its default and description', () => {
  const doc = renderConfigDoc();
  for (const { name } of [...environmentVariables(), ...aiWorkerEnvironmentVariables()]) assert.ok(doc.includes(`| \`${name}\` |`), name);
  assert.match(doc, /\| `transcode\.x264Preset` \| `MEDIAGATE_TRANSCODE_X264_PRESET` \| one of `ultrafast`.*`veryslow` \| `"veryfast"` \| libx264 preset for renditions\. \|/);
  assert.match(doc, /\| `tileSize` \| `MEDIAGATE_AI_WORKER_TILE_SIZE` \| integer 32–2048 \| `192` \| Largest tile side/);
});
