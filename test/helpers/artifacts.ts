/**
 * Test artifacts (screenshots and the like) that a person looks at after a run: written under
 * `test-artifacts/<name>/` at the repository root, which git ignores. Kept between runs
 * (each run overwrites its files).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** `<repo>/test-artifacts/<name>`, created if missing. */
export function artifactDir(name: string): string {
  const dir = resolve(ROOT, 'test-artifacts', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
