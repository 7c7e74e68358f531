/**
 * Object store overhead per segment, in one run: the filesystem store against the S3 store on
 * s3rver (a local S3-compatible server in a child process, test/helpers/s3rver.ts), both through
 * mediagate's own store classes (src/storage/). Each store gets the same N segment-sized files
 * (`--kb`, default 500 KB, random bytes), one operation at a time as one stream's ingest does:
 * - store: `putFile` (what a finished segment waits for before it is listed),
 * - download: `getFile` + `release` (what the transcoder does with each source segment),
 * - serve: `getStream` read to the end (what playback does per segment request),
 * and `putFile` with 4 in flight (a transcoder storing 4 renditions at once).
 * Figures are per segment: p50 and p95 in ms. s3rver keeps objects on the local disk, so the
 * S3 figures are the S3 protocol's cost (HTTP, signing, XML) plus s3rver's, not a network's.
 *
 * Usage: node --import tsx bench/storage.ts [--quick] [--segments 200] [--kb 500] [--out file.json]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FsObjectStore } from '../src/storage/fs-store.ts';
import type { ObjectStore } from '../src/storage/object-store.ts';
import { openTestStores, startS3rver } from '../test/helpers/s3rver.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['segments', 'kb']);
const segments = Number(values.segments ?? (quick ? 60 : 200));
const sizeBytes = Number(values.kb ?? 500) * 1000;

interface OpStats { p50Ms: number | undefined; p95Ms: number | undefined; meanMs: number }
type Row = { store: string; op: string } & OpStats;

function stats(samples: number[]): OpStats {
  return { p50Ms: percentile(samples, 0.5), p95Ms: percentile(samples, 0.95), meanMs: samples.reduce((a, b) => a + b, 0) / samples.length };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function measureStore(name: string, store: ObjectStore, files: string[]): Promise<Row[]> {
  const put: number[] = [];
  const get: number[] = [];
  const serve: number[] = [];
  const put4: number[] = [];
  // Warm-up (connection pool, directories), not counted.
  await store.putFile('warm/source/0.ts', files[0]!);
  for (const [i, file] of files.entries()) put.push(await timed(() => store.putFile(`bench/source/${i}.ts`, file)));
  for (let i = 0; i < files.length; i++) {
    get.push(await timed(async () => {
      const local = await store.getFile(`bench/source/${i}.ts`);
      await local.release();
    }));
  }
  for (let i = 0; i < files.length; i++) {
    serve.push(await timed(async () => {
      const object = await store.getStream(`bench/source/${i}.ts`);
      for await (const chunk of object!.stream) void chunk;
    }));
  }
  for (let i = 0; i < files.length; i += 4) {
    const batch = files.slice(i, i + 4);
    const t0 = performance.now();
    await Promise.all(batch.map((file, j) => store.putFile(`bench/P${j}/${i}.ts`, file)));
    const perSegmentMs = (performance.now() - t0) / batch.length;
    for (let k = 0; k < batch.length; k++) put4.push(perSegmentMs);
  }
  await store.deletePrefix('bench/');
  return [
    { store: name, op: 'store (putFile)', ...stats(put) },
    { store: name, op: 'download (getFile + release)', ...stats(get) },
    { store: name, op: 'serve (getStream, read to end)', ...stats(serve) },
    { store: name, op: 'store, 4 in flight (per segment)', ...stats(put4) },
  ];
}

const machine = await machineInfo();
printMachine(machine);
const work = mkdtempSync(join(tmpdir(), 'mg-bench-storage-'));
const s3rver = await startS3rver();
try {
  const inputs = join(work, 'in');
  mkdirSync(inputs);
  const files = Array.from({ length: segments }, (_, i) => {
    const path = join(inputs, `${i}.ts`);
    writeFileSync(path, randomBytes(sizeBytes));
    return path;
  });
  const fs = new FsObjectStore(join(work, 'objects'));
  const s3 = openTestStores(s3rver, join(work, 'scratch'));
  let rows: Row[];
  try {
    rows = [...await measureStore('fs', fs, files), ...await measureStore('s3 (s3rver)', s3.media, files)];
  } finally {
    await s3.close();
  }
  printTable(`Object store, per ${sizeBytes / 1000} KB segment, ${segments} segments, one at a time unless stated (ms)`,
    ['store', 'operation', 'p50', 'p95', 'mean'],
    rows.map((r) => [r.store, r.op, fmt(r.p50Ms), fmt(r.p95Ms), fmt(r.meanMs)]));
  const of = (store: string, op: string): Row => rows.find((r) => r.store.startsWith(store) && r.op.startsWith(op))!;
  const headline = {
    'store p50 ms fs / s3rver': `${fmt(of('fs', 'store (').p50Ms)} / ${fmt(of('s3', 'store (').p50Ms)}`,
    'store p95 ms fs / s3rver': `${fmt(of('fs', 'store (').p95Ms)} / ${fmt(of('s3', 'store (').p95Ms)}`,
    'download p50 ms fs / s3rver': `${fmt(of('fs', 'download').p50Ms)} / ${fmt(of('s3', 'download').p50Ms)}`,
  };
  writeResult('storage', machine, { segments, sizeBytes, rows, headline }, out);
} finally {
  await s3rver.destroy();
  rmSync(work, { recursive: true, force: true });
}
