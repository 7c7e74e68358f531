import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import pino from 'pino';
import { LiveFeedReader, LiveFeedWriter, type FeedEntry, type UnreadTrimmed } from '../../../src/transcode/live-feed-store.ts';
import { RedisLiveSessions } from '../../../src/transcode/live-session-store.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const testRedis = redisConnectionsForSuite('mediagate:test');
const keys = new RedisKeys('mgtest');

/** Collects a followed feed's entries until `done` says so. */
function collect(reader: LiveFeedReader, m: string, s: string, fromSeq: number, done: (entries: FeedEntry[]) => boolean): Promise<FeedEntry[]> {
  const entries: FeedEntry[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { handle.stop(); reject(new Error(`feed not complete: ${entries.length} entries`)); }, 10_000);
    const handle = reader.follow(m, s, fromSeq, (e) => {
      entries.push(e);
      if (done(entries)) { clearTimeout(timer); handle.stop(); resolve(entries); }
    });
  });
}

/** Each seq's bytes, its chunks concatenated in order (hex, for deepEqual), by seq. */
function seqBytes(chunks: readonly { seq: number; bytes: Buffer }[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const c of chunks) out[c.seq] = (out[c.seq] ?? '') + c.bytes.toString('hex');
  return out;
}

test('a feed delivers chunks, settled and end entries in order, bytes intact (every byte value, empty and 1 MiB chunks)', async () => {
  const writer = new LiveFeedWriter({ redis: testRedis.connections.open('state'), keys, logger: silentLogger(), retainSegments: 100 });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-a', 'blocking'), keys, logger: silentLogger() });
  try {
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const sent = [
      { seq: 0, first: true, startPts90k: 126000, bytes: every },
      { seq: 0, first: false, bytes: Buffer.alloc(0) },
      { seq: 0, first: false, bytes: randomBytes(1024 * 1024) },
      { seq: 1, first: true, startPts90k: 306000, bytes: randomBytes(1880) },
      { seq: 1, first: false, bytes: Buffer.from('\r\n\0$-1\r\n') },
    ];
    const reading = collect(reader, 'm1', 's1', 0, (e) => e.at(-1)?.type === 'end');
    writer.append('m1', 's1', sent[0]!);
    writer.append('m1', 's1', sent[1]!);
    await writer.flushed();
    writer.append('m1', 's1', sent[2]!);
    writer.append('m1', 's1', sent[3]!);
    writer.settle('m1', 's1', { seq: 0, transcode: true, durationMs: 2000, readyAtMs: 1234 });
    writer.append('m1', 's1', sent[4]!);
    writer.end('m1', 's1');
    const entries = await reading;
    const chunks = entries.flatMap((e) => (e.type === 'chunk' ? [e.chunk] : []));
    // The chunks handed over between two writes arrive as one (sent[0] + sent[1]; sent[2] alone: over the entry cap).
    assert.deepEqual(chunks.map((c) => [c.seq, c.first, c.startPts90k]), [[0, true, 126000], [0, false, undefined], [1, true, 306000], [1, false, undefined]]);
    assert.ok(chunks[0]!.bytes.equals(every), 'seq 0 first chunk bytes differ');
    assert.ok(chunks[1]!.bytes.equals(sent[2]!.bytes), 'the 1 MiB chunk differs');
    assert.deepEqual(seqBytes(chunks), seqBytes(sent));
    assert.deepEqual(entries.map((e) => e.type), ['chunk', 'chunk', 'chunk', 'settled', 'chunk', 'end']);
    assert.deepEqual(entries[3], { type: 'settled', settled: { seq: 0, transcode: true, durationMs: 2000, readyAtMs: 1234 } });
    assert.deepEqual(entries[5], { type: 'end', lastSeq: 1 });
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('the feed keeps the last few whole segments; a reader starts at the first chunk of any seq still held', async () => {
  const redis = testRedis.connections.open('state');
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger(), retainSegments: 3, ttlMs: 30_000 });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-b', 'blocking'), keys, logger: silentLogger() });
  try {
    for (let seq = 0; seq < 10; seq++) {
      for (let i = 0; i < 5; i++) writer.append('m2', 's1', { seq, first: i === 0, ...(i === 0 ? { startPts90k: seq * 180000 } : {}), bytes: Buffer.from(`${seq}:${i}`) });
      if (seq > 0) writer.settle('m2', 's1', { seq: seq - 1, transcode: seq % 2 === 0, durationMs: 2000, readyAtMs: seq });
      await writer.flushed();
    }
    // Trimmed at seq 9's first chunk to seqs >= 6.
    assert.equal(await reader.firstSeqHeld('m2', 's1'), 6);
    const ttl = await redis.pttl(keys.key('transcode', 'feed', 'm2', 's1'));
    assert.ok(ttl > 0 && ttl <= 30_000, `feed key TTL ${ttl}`);
    // A takeover at seq 7: the first entry delivered is seq 7's first chunk, then every later chunk.
    const entries = await collect(reader, 'm2', 's1', 7, (e) => e.some((x) => x.type === 'settled' && x.settled.seq === 8));
    const chunks = entries.flatMap((e) => (e.type === 'chunk' ? [e.chunk] : []));
    // A seq's five chunks, handed over in one tick, are one entry.
    assert.deepEqual(chunks.map((c) => c.bytes.toString()), [7, 8, 9].map((s) => [0, 1, 2, 3, 4].map((i) => `${s}:${i}`).join('')));
    assert.equal(chunks[0]!.first, true);
    assert.equal(chunks[0]!.startPts90k, 7 * 180000);
    // The settled entries of seqs 6.. follow their seq's chunks (settled for seq 6 is written in seq 7's range).
    const settled = entries.flatMap((e) => (e.type === 'settled' ? [e.settled.seq] : []));
    assert.deepEqual(settled, [6, 7, 8]);
    // Seq 2 is gone: following from it starts at the first seq held.
    const fromGone = await collect(reader, 'm2', 's1', 2, (e) => e.length > 0);
    assert.deepEqual(fromGone[0]?.type === 'chunk' && fromGone[0].chunk.seq, 6);
    // The session's owner trims what it recorded: seqs below 8 go, whatever the writer's cap.
    await reader.trimBefore('m2', 's1', 8);
    assert.equal(await reader.firstSeqHeld('m2', 's1'), 8);
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('one reader follows several feeds at once, each from its own seq; an abandoned feed expires', async () => {
  const redis = testRedis.connections.open('state');
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger(), ttlMs: 300 });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-c', 'blocking'), keys, logger: silentLogger(), blockMs: 100 });
  try {
    const a = collect(reader, 'ma', 's', 0, (e) => e.length === 2);
    const b = collect(reader, 'mb', 's', 1, (e) => e.length === 1);
    for (const seq of [0, 1]) {
      writer.append('ma', 's', { seq, first: true, startPts90k: 0, bytes: Buffer.from(`a${seq}`) });
      writer.append('mb', 's', { seq, first: true, startPts90k: 0, bytes: Buffer.from(`b${seq}`) });
    }
    writer.append('ma', 's', { seq: 1, first: false, bytes: Buffer.from('a1+') });
    writer.append('mb', 's', { seq: 1, first: false, bytes: Buffer.from('b1+') });
    const text = (es: FeedEntry[]): string[] => es.map((e) => (e.type === 'chunk' ? e.chunk.bytes.toString() : e.type));
    // a1+ joins a1's entry (same seq, same write); each feed its own entries.
    assert.deepEqual(text(await a), ['a0', 'a1a1+']);
    assert.deepEqual(text(await b), ['b1b1+']);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await redis.exists(keys.key('transcode', 'feed', 'ma', 's')), 0, 'a feed no one appends to expires');
  } finally {
    await writer.close();
    await reader.close();
  }
});

/** Opens a live session record for (m, s), as the gateway does at publish. */
async function openSession(m: string, s: string): Promise<RedisLiveSessions> {
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  await sessions.open({ manifestID: m, session: s, profiles: [], segmentTargetMs: 2000, openedAtMs: Date.now() });
  return sessions;
}

/** Appends seqs [from, to) of (m, s), `perSeq` chunks of `chunkBytes` each, flushing per seq. */
async function appendSeqs(writer: LiveFeedWriter, m: string, s: string, from: number, to: number, perSeq = 3, chunkBytes = 16): Promise<void> {
  for (let seq = from; seq < to; seq++) {
    for (let i = 0; i < perSeq; i++) {
      writer.append(m, s, { seq, first: i === 0, ...(i === 0 ? { startPts90k: seq * 180000 } : {}), bytes: Buffer.alloc(chunkBytes, seq % 256) });
    }
    await writer.flushed();
  }
}

test('an open session\'s feed keeps every seq it has not recorded, however far ahead the publisher is; what it recorded goes', async () => {
  const redis = testRedis.connections.open('state');
  // As in production (retainSegments 15): a publisher that sent 30 segments before any transcoder claimed the session.
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger() });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-d', 'blocking'), keys, logger: silentLogger() });
  try {
    const sessions = await openSession('m4', 's1');
    await appendSeqs(writer, 'm4', 's1', 0, 30);
    assert.equal(await reader.firstSeqHeld('m4', 's1'), 0, 'seq 0 is still in the feed');
    // Each seq's chunks, handed over in one tick, are one entry.
    const entries = await collect(reader, 'm4', 's1', 0, (e) => e.some((x) => x.type === 'chunk' && x.chunk.seq === 29));
    const firsts = entries.flatMap((e) => (e.type === 'chunk' && e.chunk.first ? [e.chunk.seq] : []));
    assert.deepEqual(firsts, Array.from({ length: 30 }, (_, i) => i), 'every seq is delivered from seq 0');
    // The owner recorded seqs 0-19: at the next seq's start the writer trims them (recorded), and nothing else.
    const claim = await sessions.claim('m4', 's1', 'owner-1', 5000);
    assert.equal(claim.claim, 'ok');
    assert.equal(await sessions.progress('m4', 's1', 'owner-1', 20), true);
    await appendSeqs(writer, 'm4', 's1', 30, 31);
    assert.equal(await reader.firstSeqHeld('m4', 's1'), 20);
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('over its byte cap an open session\'s feed drops its oldest seqs not yet recorded, with an error log and a count', async () => {
  const redis = testRedis.connections.open('state');
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const trimmed: UnreadTrimmed[] = [];
  // 3 chunks of 1000 bytes per seq: at most 10 000 bytes of seqs before the newest one stay (3 whole seqs).
  const writer = new LiveFeedWriter({ redis, keys, logger, maxBytes: 10_000, onUnreadTrimmed: (t) => trimmed.push(t) });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-e', 'blocking'), keys, logger: silentLogger() });
  try {
    await openSession('m5', 's1');
    await appendSeqs(writer, 'm5', 's1', 0, 4, 3, 1000);
    assert.equal(trimmed.length, 0, 'within the cap nothing is dropped');
    assert.equal(await reader.firstSeqHeld('m5', 's1'), 0);
    await appendSeqs(writer, 'm5', 's1', 4, 10, 3, 1000);
    // At seq N's start seqs N-3 .. N-1 stay: at seq 9, seqs 6, 7, 8 (and 9).
    assert.equal(await reader.firstSeqHeld('m5', 's1'), 6);
    const held = await redis.xrange(keys.key('transcode', 'feed', 'm5', 's1'), '-', '+');
    assert.ok(held.length <= 4 * 3, `${held.length} entries held`);
    assert.deepEqual(trimmed.map((t) => [t.fromSeq, t.toSeq]), [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]);
    assert.ok(trimmed.every((t) => t.manifestID === 'm5' && t.session === 's1'));
    const errors = lines.filter((l) => l['level'] === 50 && String(l['msg']).includes('byte cap'));
    assert.equal(errors.length, trimmed.length, 'each loss is logged as an error');
    assert.equal(errors[0]!['fromSeq'], 0);
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('chunks of one seq handed over between two writes go out as one entry with one `b` field, delivered as one chunk, in order', async () => {
  const redis = testRedis.connections.open('state');
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger() });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-f', 'blocking'), keys, logger: silentLogger() });
  try {
    const sent = [
      { seq: 0, first: true, startPts90k: 9000, bytes: randomBytes(5000) },
      ...Array.from({ length: 9 }, () => ({ seq: 0, first: false, bytes: randomBytes(700) })),
      { seq: 1, first: true, startPts90k: 189000, bytes: randomBytes(3000) },
      { seq: 1, first: false, bytes: Buffer.alloc(0) },
      { seq: 1, first: false, bytes: randomBytes(10) },
    ];
    for (const c of sent) writer.append('m6', 's1', c);
    writer.settle('m6', 's1', { seq: 0, transcode: true, durationMs: 2000, readyAtMs: 1 });
    const after = { seq: 1, first: false, bytes: Buffer.from('after the settlement') };
    writer.append('m6', 's1', after);
    writer.end('m6', 's1');
    await writer.flushed();
    // seq 0's chunks, seq 1's first three, the settlement, seq 1's last chunk, the end.
    const key = keys.key('transcode', 'feed', 'm6', 's1');
    const held = await redis.xrangeBuffer(key, '-', '+');
    assert.equal(held.length, 5);
    const bFields = held.map(([, fields]) => fields.filter((f, i) => i % 2 === 0 && f.toString() === 'b').length);
    assert.deepEqual(bFields, [1, 1, 0, 1, 0], 'one b field per chunk entry');
    const entries = await collect(reader, 'm6', 's1', 0, (e) => e.at(-1)?.type === 'end');
    const chunks = entries.flatMap((e) => (e.type === 'chunk' ? [e.chunk] : []));
    assert.deepEqual(chunks.map((c) => [c.seq, c.first, c.startPts90k]), [[0, true, 9000], [1, true, 189000], [1, false, undefined]]);
    assert.ok(chunks[0]!.bytes.equals(Buffer.concat(sent.slice(0, 10).map((c) => c.bytes))), 'seq 0 bytes differ');
    assert.ok(chunks[1]!.bytes.equals(Buffer.concat(sent.slice(10).map((c) => c.bytes))), 'seq 1 bytes differ');
    assert.ok(chunks[2]!.bytes.equals(after.bytes));
    assert.deepEqual(entries.map((e) => e.type).slice(-3), ['settled', 'chunk', 'end']);
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('append copies the chunk before it returns: the caller may reuse its buffer (the segmenter hands over a view of its output)', async () => {
  const writer = new LiveFeedWriter({ redis: testRedis.connections.open('state'), keys, logger: silentLogger() });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-h', 'blocking'), keys, logger: silentLogger() });
  try {
    const view = Buffer.alloc(188);
    for (const [i, first] of [true, false, false].entries()) {
      view.fill(i + 1);
      writer.append('m8', 's1', { seq: 0, first, ...(first ? { startPts90k: 0 } : {}), bytes: view });
    }
    view.fill(9);
    writer.end('m8', 's1');
    const entries = await collect(reader, 'm8', 's1', 0, (e) => e.at(-1)?.type === 'end');
    const chunks = entries.flatMap((e) => (e.type === 'chunk' ? [e.chunk.bytes] : []));
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat([Buffer.alloc(188, 1), Buffer.alloc(188, 2), Buffer.alloc(188, 3)])));
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('a write waits out the batch interval, except for a seq\'s first chunk, a settlement and the end; a chunk entry closes at its byte cap', async () => {
  const redis = testRedis.connections.open('state');
  // An interval no test run reaches: whatever arrives was written at once (urgent) or by flushed().
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger(), batchMs: 600_000, entryMaxBytes: 1000 });
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-g', 'blocking'), keys, logger: silentLogger(), blockMs: 50 });
  const key = keys.key('transcode', 'feed', 'm7', 's1');
  const got: FeedEntry[] = [];
  const handle = reader.follow('m7', 's1', 0, (e) => got.push(e));
  const waitFor = async (n: number): Promise<void> => {
    for (let i = 0; got.length < n && i < 1000; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, n, `${got.length} entries delivered, ${n} expected`);
  };
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  try {
    // The first write: nothing before it to wait for; a seq's first chunk goes out at once anyway.
    writer.append('m7', 's1', { seq: 0, first: true, startPts90k: 0, bytes: Buffer.alloc(100, 1) });
    await waitFor(1);
    // Later chunks, one per tick, wait for the interval: the first two share an entry, the third is over its cap.
    const parts = [Buffer.alloc(400, 2), Buffer.alloc(400, 3), Buffer.alloc(400, 4)];
    for (const bytes of parts) {
      writer.append('m7', 's1', { seq: 0, first: false, bytes });
      await tick();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await redis.xlen(key), 1, 'chunks within the interval are held');
    // A settlement goes out at once, after the chunks held.
    writer.settle('m7', 's1', { seq: 0, transcode: true, durationMs: 2000, readyAtMs: 5 });
    await waitFor(4);
    assert.deepEqual(got.slice(1).map((e) => (e.type === 'chunk' ? e.chunk.bytes.toString('hex') : e.type)),
      [Buffer.concat(parts.slice(0, 2)).toString('hex'), parts[2]!.toString('hex'), 'settled']);
    // So do the next seq's first chunk (with the chunk held before it) and the end.
    writer.append('m7', 's1', { seq: 0, first: false, bytes: Buffer.from('tail') });
    await tick();
    writer.append('m7', 's1', { seq: 1, first: true, startPts90k: 180000, bytes: Buffer.from('seq 1') });
    await waitFor(6);
    writer.append('m7', 's1', { seq: 1, first: false, bytes: Buffer.from('last') });
    await tick();
    writer.end('m7', 's1');
    await waitFor(8);
    assert.deepEqual(got.slice(4).map((e) => (e.type === 'chunk' ? `${e.chunk.seq} ${e.chunk.first} ${e.chunk.bytes.toString()}` : e.type)),
      ['0 false tail', '1 true seq 1', '1 false last', 'end']);
  } finally {
    handle.stop();
    await writer.close();
    await reader.close();
  }
});
