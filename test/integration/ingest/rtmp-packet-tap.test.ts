/**
 * Pins what node-media-server 4.4.3 hands an in-process subscriber (src/ingest/rtmp/packet-tap.ts):
 * ffmpeg publishes 10 s of the clip in real time with stream copy, and the publish's tag
 * reader, given out by RtmpServer after a slow publish decision, must see every FLV tag from
 * the first: 242 video frames, 433 AAC frames, one AVC config, one AAC config, one metadata
 * tag and ffmpeg's closing end-of-sequence tag, with nothing from a second publisher that
 * tries the same stream key meanwhile. Watchers (live readers joining mid-way, for WHEP) get the
 * latest configuration tags, then only new tags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { PublishRequest } from '../../../src/ingest/rtmp/rtmp-options.ts';
import {
  SOURCE_CLIP, captureLogger, publish, secretKey, waitFor, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

const { logger, lines } = captureLogger();
let onAccepted: (req: PublishRequest) => void = () => undefined;
const unpublishedAtMs: number[] = [];

const rtmp: RtmpServerFixture = useRtmpServer('rtmp-tap', {
  logger,
  onPublish: async (req) => {
    // A slow decision (an auth webhook): the tags that arrive meanwhile must be held, not lost.
    await new Promise((r) => setTimeout(r, 300));
    onAccepted(req);
    return { accept: true };
  },
  onUnpublish: () => { unpublishedAtMs.push(Date.now()); },
});

interface TagCounts { video: number; audio: number; avcConfig: number; aacConfig: number; metadata: number; endOfSequence: number; other: number }

function classify(tag: Buffer, counts: TagCounts): void {
  const type = tag[0];
  const body = tag.subarray(11, tag.length - 4);
  if (type === 18) counts.metadata += 1;
  else if (type === 9 && (body[0]! & 0x0f) === 7) {
    const avcPacketType = body[1];
    if (avcPacketType === 0) counts.avcConfig += 1;
    else if (avcPacketType === 1) counts.video += 1;
    else if (avcPacketType === 2) counts.endOfSequence += 1;
    else counts.other += 1;
  } else if (type === 8 && body[0]! >> 4 === 10) {
    if (body[1] === 0) counts.aacConfig += 1;
    else counts.audio += 1;
  } else counts.other += 1;
}

test('the tag reader of a publish gets every FLV tag from the first, whole, in order, and unmodified', { timeout: 60_000 }, async () => {
  const key = secretKey('tap');
  const counts: TagCounts = { video: 0, audio: 0, avcConfig: 0, aacConfig: 0, metadata: 0, endOfSequence: 0, other: 0 };
  const tags: { tag: Buffer; sha1: string }[] = [];
  let ended = false;
  let endedAtMs = 0;
  let readerAtMs = 0;
  onAccepted = (req) => {
    readerAtMs = Date.now();
    rtmp.server.flvTags(req.sessionId)!.read({
      tag: (tag) => {
        assert.equal(ended, false, 'no tag after end');
        tags.push({ tag, sha1: createHash('sha1').update(tag).digest('hex') });
        classify(tag, counts);
      },
      end: () => { ended = true; endedAtMs = Date.now(); },
    });
    assert.throws(() => rtmp.server.flvTags(req.sessionId)!.read({ tag: () => undefined, end: () => undefined }), /already has a tag reader/);
  };

  const startedAtMs = Date.now();
  const publisher = publish(rtmp.port, key, SOURCE_CLIP, { inputArgs: ['-t', '10'] });
  // A second publisher on the same key while the first is live: refused, and none of its media reaches the tap.
  await waitFor('first publish accepted', () => readerAtMs > 0, 20_000);
  await new Promise((r) => setTimeout(r, 1000));
  const second = publish(rtmp.port, key, SOURCE_CLIP, { inputArgs: ['-t', '10'] });
  const killer = setTimeout(() => second.kill(), 8000);
  const secondExit = await second.exited;
  clearTimeout(killer);
  assert.notEqual(secondExit.code, 0, 'the second publisher was refused');

  const exit = await publisher.exited;
  assert.equal(exit.code, 0, 'the publisher streamed 10 s of the clip');
  await waitFor('tag reader end', () => ended, 5000);
  assert.ok(readerAtMs - startedAtMs > 300, 'the reader came after media had started to arrive');
  assert.ok(endedAtMs <= unpublishedAtMs[0]!, 'the reader ends before onUnpublish');

  // The pinned version's counts for 10 s of the clip (ffmpeg -t 10 -c copy: 242 video frames, 433 AAC frames).
  assert.deepEqual(counts, { video: 242, audio: 433, avcConfig: 1, aacConfig: 1, metadata: 1, endOfSequence: 1, other: 0 });

  // Every tag is whole: its data size and PreviousTagSize match its length.
  for (const { tag } of tags) {
    assert.equal(tag.readUIntBE(1, 3), tag.length - 15, 'DataSize = tag length - 11 - 4');
    assert.equal(tag.readUInt32BE(tag.length - 4), tag.length - 4, 'PreviousTagSize = header + body');
  }
  // From the first tag: metadata, then the configs, then a key frame at DTS 0; DTS never decreases per track.
  assert.equal(tags[0]!.tag[0], 18, 'the metadata tag comes first');
  const firstVideo = tags.find(({ tag }) => tag[0] === 9 && tag[12] === 1)!.tag;
  assert.equal(firstVideo[11]! >> 4, 1, 'the first video frame is a key frame');
  assert.equal(dtsOf(firstVideo), 0, 'the first video frame has DTS 0 (nothing before it was lost)');
  for (const type of [8, 9]) {
    const dts = tags.filter(({ tag }) => tag[0] === type).map(({ tag }) => dtsOf(tag));
    assert.ok(dts.every((d, i) => i === 0 || d >= dts[i - 1]!), `DTS of tag type ${type} never decreases`);
  }
  // NMS's buffers are also its GOP cache: nobody modified them after they were handed out.
  for (const { tag, sha1 } of tags) assert.equal(createHash('sha1').update(tag).digest('hex'), sha1);

  // The video frames are the clip's first 242, byte for byte in size (AVCC payload = MP4 sample).
  const sizes = tags.filter(({ tag }) => tag[0] === 9 && tag[12] === 1).map(({ tag }) => tag.length - 15 - 5);
  assert.deepEqual(sizes, sourceVideoSampleSizes(242));
});

test('watchers join a live publish mid-way: the latest configuration tags at once, then only new tags, then end; a detached one gets no more', { timeout: 40_000 }, async () => {
  const key = secretKey('watch');
  let sessionId = '';
  onAccepted = (req) => {
    sessionId = req.sessionId;
    rtmp.server.flvTags(req.sessionId)!.read({ tag: () => undefined, end: () => undefined });
  };
  const publisher = publish(rtmp.port, key, SOURCE_CLIP, { inputArgs: ['-t', '6'] });
  await waitFor('publish accepted', () => sessionId !== '', 20_000);
  await new Promise((r) => setTimeout(r, 2000));
  const watch = rtmp.server.watchTags(sessionId)!;
  const joined: Buffer[] = [];
  let joinedDuringWatch = 0;
  let ended = false;
  watch.watch({ tag: (tag) => { joined.push(tag); }, end: () => { ended = true; } });
  joinedDuringWatch = joined.length;
  const detachedTags: Buffer[] = [];
  const detach = watch.watch({ tag: (tag) => { detachedTags.push(tag); }, end: () => assert.fail('a detached watcher gets no end') });
  await new Promise((r) => setTimeout(r, 1000));
  detach();
  const atDetach = detachedTags.length;
  assert.equal((await publisher.exited).code, 0);
  await waitFor('watcher end', () => ended, 5000);

  // At once, inside watch(): metadata, AVC config, AAC config; then no configuration tag again.
  assert.equal(joinedDuringWatch, 3);
  assert.deepEqual(joined.slice(0, 3).map((t) => t[0]), [18, 9, 8]);
  assert.ok(joined[1]![12] === 0 && joined[2]![12] === 0, 'the AVC and AAC configuration tags');
  const media = joined.slice(3);
  assert.ok(media.every((t) => t[0] !== 18 && t[12] !== 0), 'only media tags after the configuration');
  // Only new tags: the first media tag is from about when the watcher joined (2 s in), not the start.
  assert.ok(dtsOf(media[0]!) >= 1500, `first media tag DTS ${dtsOf(media[0]!)} ms`);
  assert.ok(media.length > 100, `${media.length} media tags after joining`);
  assert.ok(detachedTags.length === atDetach && atDetach > 3, 'the detached watcher got tags until it detached, none after');
  assert.equal(rtmp.server.watchTags(sessionId), undefined, 'nothing to watch once the publish ended');
});

test('a reader that takes frames gets each audio/video frame as its tag body, no tag made: together with its tags, the whole publish in order', { timeout: 60_000 }, async () => {
  const key = secretKey('frames');
  const counts: TagCounts = { video: 0, audio: 0, avcConfig: 0, aacConfig: 0, metadata: 0, endOfSequence: 0, other: 0 };
  // Each tag, or each frame rebuilt as the tag it stands for (header, body copy, PreviousTagSize).
  const tags: Buffer[] = [];
  let framesTaken = 0;
  let ended = false;
  let readerAtMs = 0;
  onAccepted = (req) => {
    readerAtMs = Date.now();
    rtmp.server.flvTags(req.sessionId)!.read({
      tag: (tag) => { tags.push(tag); classify(tag, counts); },
      frame: (tagType, dtsMs, body) => {
        framesTaken += 1;
        const tag = Buffer.alloc(11 + body.length + 4);
        tag[0] = tagType;
        tag.writeUIntBE(body.length, 1, 3);
        tag.writeUIntBE(dtsMs & 0xffffff, 4, 3);
        tag[7] = dtsMs >>> 24;
        body.copy(tag, 11);
        tag.writeUInt32BE(11 + body.length, 11 + body.length);
        tags.push(tag);
        classify(tag, counts);
      },
      end: () => { ended = true; },
    });
  };
  const publisher = publish(rtmp.port, key, SOURCE_CLIP, { inputArgs: ['-t', '10'] });
  await waitFor('publish accepted', () => readerAtMs > 0, 20_000);
  assert.equal((await publisher.exited).code, 0);
  await waitFor('tag reader end', () => ended, 5000);
  // Held while the decision was pending: tags; every frame after: a frame without a tag.
  assert.ok(framesTaken > 200, `frames taken without a tag: ${framesTaken}`);
  assert.deepEqual(counts, { video: 242, audio: 433, avcConfig: 1, aacConfig: 1, metadata: 1, endOfSequence: 1, other: 0 });
  const firstVideo = tags.find((tag) => tag[0] === 9 && tag[12] === 1)!;
  assert.equal(dtsOf(firstVideo), 0, 'from the first video frame');
  for (const type of [8, 9]) {
    const dts = tags.filter((tag) => tag[0] === type).map(dtsOf);
    assert.ok(dts.every((d, i) => i === 0 || d >= dts[i - 1]!), `DTS of tag type ${type} never decreases`);
  }
  const sizes = tags.filter((tag) => tag[0] === 9 && tag[12] === 1).map((tag) => tag.length - 15 - 5);
  assert.deepEqual(sizes, sourceVideoSampleSizes(242), 'the clip\'s video samples, byte for byte in size');
});

test('the stream key never appears in any log line', () => {
  assert.ok(lines.length > 5, 'logs were captured');
  assert.deepEqual(lines.filter((l) => /SeCrEt/.test(l)), []);
});

/** The FLV tag's 32-bit DTS (24 bits + the extension byte), ms. */
function dtsOf(tag: Buffer): number {
  return ((tag[7]! << 24) | tag.readUIntBE(4, 3)) >>> 0;
}

/** Sizes of the clip's first `n` video samples in decode order (ffprobe packet sizes). */
function sourceVideoSampleSizes(n: number): number[] {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', `%+#${n}`, '-show_entries', 'packet=size', '-of', 'csv=p=0', SOURCE_CLIP], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffprobe failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
}
