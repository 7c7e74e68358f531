/**
 * mediagate's import rules (docs/architecture.md, "Boundaries"), checked by dependency-cruiser
 * 17.4 (https://github.com/sverweij/dependency-cruiser) in `make test` through
 * `make check-boundaries`:
 *
 *   npx depcruise --config .dependency-cruiser.cjs src cmd
 *
 * Paths are matched relative to the directory the check runs in (the repository root; the
 * rule test, test/unit/boundaries/boundaries.test.ts, runs the same rules in
 * test/fixtures/boundaries/, a small tree with planted violations). Package paths are
 * matched by `node_modules/<name>/` anywhere in the resolved path, so a symlinked
 * node_modules resolves the same way.
 *
 * Folders under src/: the shared ones below may be imported by every feature; every other
 * folder is a feature (ingest, transcode, hls, ai, payments, events, control, metrics,
 * storage, recording, ai-worker, …) and imports only itself and the shared folders. The
 * files directly in src/ (the composition root: app.ts and the role and core assembly it is
 * split into, lifecycle.ts, cli.ts) and cmd/ wire everything and may import anything;
 * nothing under src/<folder>/ imports them.
 */

/** Folders any feature may import. domain/ and errors/ are pure (see `domain-is-pure`). */
const SHARED = '(?:domain|errors|log|config|media|redis|http|frames|trickle)';

/** Files that may import ioredis/bullmq besides src/redis/: Redis stores, BullMQ queues, pub/sub buses. */
const REDIS_STORE_FILE = '(?:-store|-queue|-bus)\\.ts$';

/** A package: `node_modules/<name>/` anywhere in the resolved path. */
const pkg = (names) => `(?:^|/)node_modules/(?:${names.join('|')})/`;

/** A rule that only files matching one of `allowed` import what matches `to` (a package path or a built-in). */
const confined = (name, comment, allowed, to) => ({ name, comment, severity: 'error', from: { pathNot: allowed }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-cross-feature',
      comment:
        'A feature folder imports only its own folder and the shared folders (domain, errors, log, config, ' +
        'media, redis, http, frames, trickle). Declare the small interface you need (a port) in your own folder and let ' +
        'src/app.ts pass the implementation.',
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: `^src/${SHARED}/` },
      to: { path: '^src/', pathNot: `^src/(?:$1|${SHARED})/` },
    },
    {
      name: 'shared-imports-no-feature',
      comment:
        'The shared folders (domain, errors, log, config, media, redis, http, frames, trickle) import only shared folders: ' +
        'never a feature folder nor the composition root.',
      severity: 'error',
      from: { path: `^src/${SHARED}/` },
      to: { path: '^src/', pathNot: `^src/${SHARED}/` },
    },
    {
      name: 'domain-is-pure',
      comment:
        'domain/ and errors/ hold pure types and rules: they import only each other and Node built-ins, ' +
        'no package and no other folder.',
      severity: 'error',
      from: { path: '^src/(?:domain|errors)/' },
      to: { pathNot: '^src/(?:domain|errors)/', dependencyTypesNot: ['core'] },
    },
    confined(
      'redis-clients-only-in-stores',
      'ioredis and bullmq are imported only by src/redis/ (connections, scripts, keys, retry) and by the ' +
        'Redis-backed files of a feature, named *-store.ts, *-queue.ts or *-bus.ts.',
      ['^src/redis/', REDIS_STORE_FILE],
      pkg(['ioredis', 'bullmq']),
    ),
    confined(
      'node-media-server-only-in-rtmp',
      'node-media-server is confined to the RTMP adapter, src/ingest/rtmp/.',
      ['^src/ingest/rtmp/'],
      pkg(['node-media-server']),
    ),
    confined(
      'child-processes-only-in-media',
      'fluent-ffmpeg and node:child_process are used only in src/media/, where one supervisor owns every ' +
        'ffmpeg/ffprobe child.',
      ['^src/media/'],
      [pkg(['fluent-ffmpeg']), '^(?:node:)?child_process$'],
    ),
    confined('aws-sdk-only-in-storage', 'The AWS SDK (S3) is confined to src/storage/.', ['^src/storage/'], pkg(['@aws-sdk/[^/]+'])),
    confined(
      'upload-and-validation-only-in-routes',
      'multer and express-openapi-validator are used only by the http/ shell and the *-routes.ts files.',
      ['^src/http/', '-routes\\.ts$'],
      pkg(['multer', 'express-openapi-validator']),
    ),
    confined(
      'inference-libraries-only-in-ai-worker',
      'sharp and TensorFlow.js belong to the reference AI worker (src/ai-worker/), never the gateway.',
      ['^src/ai-worker/'],
      pkg(['sharp', '@tensorflow/[^/]+']),
    ),
    confined(
      'node-datachannel-only-in-webrtc',
      'node-datachannel (WebRTC) is confined to src/webrtc/.',
      ['^src/webrtc/'],
      pkg(['node-datachannel']),
    ),
    {
      name: 'no-dev-dependency-at-runtime',
      comment: 'src/ and cmd/ run in production, where devDependencies are not installed.',
      severity: 'error',
      from: { path: '^(?:src|cmd)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-undeclared-package',
      comment: 'Every package imported is declared in package.json (not only present as a dependency of a dependency).',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-unresolvable',
      comment: 'Every import resolves to a file, a package or a Node built-in (so no rule is dodged by a typo).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    // Packages are leaves: their own imports are theirs.
    doNotFollow: { path: '(?:^|/)node_modules/' },
    // Type-only imports count (`import type`): they couple folders as much as value imports.
    tsPreCompilationDeps: true,
  },
};
