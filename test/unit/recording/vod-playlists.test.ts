import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, setOptions, types } from 'hls-parser';
import { masterForLatest, renderVodPlaylists, segmentUris, thumbnailsVtt } from '../../../src/recording/vod-playlists.ts';
import type { KeptSegment } from '../../../src/recording/recording-store.ts';

setOptions({ strictMode: true });

function seg(seq: number, durationMs = 2000, discontinuity = false): KeptSegment {
  return { seq, durationMs, discontinuity, bytes: 250_000, width: 640, height: 360, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24 };
}

test('each rendition gets a VOD playlist of every kept segment, and the master lists them in ladder order', () => {
  const out = renderVodPlaylists(['source', '144p'], new Map([
    ['144p', [seg(0), seg(1), seg(2, 1500)]],
    ['source', [seg(0), seg(1), seg(2, 1500)]],
  ]), 2)!;
  assert.deepEqual([...out.files.keys()].sort(), ['144p.m3u8', 'index.m3u8', 'source.m3u8']);
  const media = parse(out.files.get('source.m3u8')!) as types.MediaPlaylist;
  assert.equal(media.playlistType, 'VOD');
  assert.equal(media.endlist, true);
  assert.deepEqual(media.segments.map((s) => s.uri), ['source/0.ts', 'source/1.ts', 'source/2.ts']);
  assert.deepEqual(media.segments.map((s) => s.duration), [2, 2, 1.5]);
  assert.equal(out.durationMs, 5500);
  const master = parse(out.files.get('index.m3u8')!) as types.MasterPlaylist;
  assert.deepEqual(master.variants.map((v) => v.uri), ['source.m3u8', '144p.m3u8']);
  assert.equal(master.variants[0]!.bandwidth, 1_333_333, "BANDWIDTH is the peak segment bit rate (the short last one)");
  assert.deepEqual(out.renditions.map((r) => [r.name, r.segments, r.durationMs]), [['source', 3, 5500], ['144p', 3, 5500]]);
});

test('a skipped seq or a marked jump becomes a discontinuity; renditions with nothing kept are left out', () => {
  const out = renderVodPlaylists(['source', '720p', '144p'], new Map([
    ['source', [seg(0), seg(1), seg(3), seg(4, 2000, true)]],
    ['144p', []],
  ]), 2)!;
  const media = parse(out.files.get('source.m3u8')!) as types.MediaPlaylist;
  assert.deepEqual(media.segments.map((s) => s.discontinuity === true), [false, false, true, true]);
  assert.deepEqual(out.renditions.map((r) => r.name), ['source']);
  assert.deepEqual(segmentUris(out.files.get('source.m3u8')!), ['source/0.ts', 'source/1.ts', 'source/3.ts', 'source/4.ts']);
});

test('nothing kept gives no recording', () => {
  assert.equal(renderVodPlaylists(['source'], new Map(), 2), undefined);
});

test('the latest-recording master prefixes each URI with its session', () => {
  const master = renderVodPlaylists(['source'], new Map([['source', [seg(0)]]]), 2)!.files.get('index.m3u8')!;
  const latest = parse(masterForLatest(master, 'm1abc')) as types.MasterPlaylist;
  assert.deepEqual(latest.variants.map((v) => v.uri), ['m1abc/source.m3u8']);
});

test('the thumbnail index has one WebVTT cue per source segment, on the recording\'s timeline, naming its thumbnail', () => {
  const out = renderVodPlaylists(['source'], new Map([['source', [seg(0), seg(1, 2085), seg(3, 1500), seg(4, 3_600_000)]]]), 2)!;
  assert.equal(thumbnailsVtt(out.files.get('source.m3u8')!), [
    'WEBVTT', '',
    '00:00:00.000 --> 00:00:02.000', 'thumbnails/0.jpg', '',
    '00:00:02.000 --> 00:00:04.085', 'thumbnails/1.jpg', '',
    '00:00:04.085 --> 00:00:05.585', 'thumbnails/3.jpg', '',
    '00:00:05.585 --> 01:00:05.585', 'thumbnails/4.jpg', '',
  ].join('\n'));
});
