import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parse, setOptions, types } from 'hls-parser';

import {
  orderMasterVariants,
  renderMasterPlaylist,
  renderMediaPlaylist,
  type MediaPlaylistInput,
  type VariantStream,
} from '../../../src/domain/playlist-writer.ts';

setOptions({ strictMode: true });

function parseMedia(text: string): types.MediaPlaylist {
  const playlist = parse(text);
  assert.ok(!playlist.isMasterPlaylist, 'expected a media playlist');
  return playlist as types.MediaPlaylist;
}

function parseMaster(text: string): types.MasterPlaylist {
  const playlist = parse(text);
  assert.ok(playlist.isMasterPlaylist, 'expected a master playlist');
  return playlist as types.MasterPlaylist;
}

function liveInput(overrides: Partial<MediaPlaylistInput> = {}): MediaPlaylistInput {
  return {
    mediaSequence: 0,
    discontinuitySequence: 0,
    segments: [],
    ended: false,
    minTargetDurationS: 2,
    ...overrides,
  };
}

function targetDurationFor(durationMs: number): number {
  return parseMedia(
    renderMediaPlaylist(liveInput({ segments: [{ uri: '0.ts', durationMs, discontinuity: false }] })),
  ).targetDuration;
}

describe('renderMediaPlaylist', () => {
  test('a live window round-trips sequence numbers, discontinuities, durations and URIs', () => {
    const text = renderMediaPlaylist({
      mediaSequence: 120,
      discontinuitySequence: 3,
      segments: [
        { uri: '120.ts', durationMs: 2000, discontinuity: false },
        { uri: '121.ts', durationMs: 2002, discontinuity: true },
        { uri: '122.ts', durationMs: 1968, discontinuity: false },
        { uri: '123.ts', durationMs: 2040, discontinuity: true },
      ],
      ended: false,
      minTargetDurationS: 2,
    });
    const playlist = parseMedia(text);

    assert.equal(playlist.version, 3);
    assert.equal(playlist.mediaSequenceBase, 120);
    assert.equal(playlist.discontinuitySequenceBase, 3);
    assert.equal(playlist.targetDuration, 3);
    assert.equal(playlist.endlist, false);
    assert.deepEqual(
      playlist.segments.map((s) => ({
        uri: s.uri,
        duration: s.duration,
        discontinuity: s.discontinuity === true,
        mediaSequenceNumber: s.mediaSequenceNumber,
        discontinuitySequence: s.discontinuitySequence,
      })),
      [
        { uri: '120.ts', duration: 2, discontinuity: false, mediaSequenceNumber: 120, discontinuitySequence: 3 },
        { uri: '121.ts', duration: 2.002, discontinuity: true, mediaSequenceNumber: 121, discontinuitySequence: 4 },
        { uri: '122.ts', duration: 1.968, discontinuity: false, mediaSequenceNumber: 122, discontinuitySequence: 4 },
        { uri: '123.ts', duration: 2.04, discontinuity: true, mediaSequenceNumber: 123, discontinuitySequence: 5 },
      ],
    );
  });

  test('writes the exact RFC 8216 lines, each ending with a newline', () => {
    const text = renderMediaPlaylist(
      liveInput({
        mediaSequence: 7,
        discontinuitySequence: 1,
        segments: [
          { uri: '7.ts', durationMs: 2000, discontinuity: true },
          { uri: '8.ts', durationMs: 33, discontinuity: false },
        ],
        ended: true,
      }),
    );
    assert.equal(
      text,
      [
        '#EXTM3U',
        '#EXT-X-VERSION:3',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:7',
        '#EXT-X-DISCONTINUITY-SEQUENCE:1',
        '#EXT-X-DISCONTINUITY',
        '#EXTINF:2.000,',
        '7.ts',
        '#EXTINF:0.033,',
        '8.ts',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    );
  });

  test('prints every EXTINF with exactly three decimals', () => {
    const durationsMs = [1, 10, 100, 999, 1000, 1001, 2000, 12345, 59999];
    const text = renderMediaPlaylist(
      liveInput({
        segments: durationsMs.map((durationMs, i) => ({ uri: `${i}.ts`, durationMs, discontinuity: false })),
      }),
    );
    const printed = text.split('\n').filter((line) => line.startsWith('#EXTINF:'));
    assert.deepEqual(printed, [
      '#EXTINF:0.001,',
      '#EXTINF:0.010,',
      '#EXTINF:0.100,',
      '#EXTINF:0.999,',
      '#EXTINF:1.000,',
      '#EXTINF:1.001,',
      '#EXTINF:2.000,',
      '#EXTINF:12.345,',
      '#EXTINF:59.999,',
    ]);
    assert.deepEqual(
      parseMedia(text).segments.map((s) => s.duration),
      durationsMs.map((ms) => ms / 1000),
    );
  });

  test('rounds fractional milliseconds half up before printing', () => {
    const text = renderMediaPlaylist(
      liveInput({
        segments: [
          { uri: 'a.ts', durationMs: 2000.4, discontinuity: false },
          { uri: 'b.ts', durationMs: 2000.5, discontinuity: false },
          { uri: 'c.ts', durationMs: 1999.6, discontinuity: false },
          { uri: 'd.ts', durationMs: 180045 / 90, discontinuity: false },
        ],
      }),
    );
    assert.deepEqual(
      parseMedia(text).segments.map((s) => s.duration),
      [2, 2.001, 2, 2.001],
    );
  });

  test('a duration that prints as a whole second does not raise the target duration', () => {
    assert.equal(targetDurationFor(2000), 2);
    assert.equal(targetDurationFor(2000.4), 2);
    assert.equal(targetDurationFor(1999.9), 2);
  });

  test('a duration that prints even 1 ms over a whole second rounds the target duration up', () => {
    assert.equal(targetDurationFor(2000.6), 3);
    assert.equal(targetDurationFor(2001), 3);
    assert.equal(targetDurationFor(2999), 3);
    assert.equal(targetDurationFor(3000), 3);
    assert.equal(targetDurationFor(3000.5), 4);
  });

  test('the target duration is at least every EXTINF rounded up and at least the configured minimum', () => {
    const segments = [1500, 4200, 1999, 4000].map((durationMs, i) => ({
      uri: `${i}.ts`,
      durationMs,
      discontinuity: false,
    }));
    const playlist = parseMedia(renderMediaPlaylist(liveInput({ segments, minTargetDurationS: 2 })));
    assert.equal(playlist.targetDuration, 5);
    for (const segment of playlist.segments) {
      assert.ok(Math.ceil(segment.duration) <= playlist.targetDuration);
    }

    const short = [{ uri: '0.ts', durationMs: 1000, discontinuity: false }];
    assert.equal(parseMedia(renderMediaPlaylist(liveInput({ segments: short, minTargetDurationS: 6 }))).targetDuration, 6);
  });

  test('an empty live playlist is valid and uses the minimum target duration', () => {
    const text = renderMediaPlaylist(liveInput({ mediaSequence: 5, minTargetDurationS: 4 }));
    const playlist = parseMedia(text);
    assert.equal(playlist.targetDuration, 4);
    assert.equal(playlist.mediaSequenceBase, 5);
    assert.equal(playlist.segments.length, 0);
    assert.equal(playlist.endlist, false);
    assert.ok(!text.includes('#EXTINF'));
  });

  test('omits EXT-X-DISCONTINUITY-SEQUENCE when it is zero', () => {
    const text = renderMediaPlaylist(
      liveInput({ segments: [{ uri: '0.ts', durationMs: 2000, discontinuity: false }] }),
    );
    assert.ok(!text.includes('#EXT-X-DISCONTINUITY-SEQUENCE'));
    const playlist = parseMedia(text);
    assert.equal(playlist.segments[0]?.discontinuitySequence, 0);
    assert.equal(playlist.segments[0]?.discontinuity, undefined);
  });

  test('writes EXT-X-ENDLIST only when the stream has ended', () => {
    const segments = [{ uri: '0.ts', durationMs: 2000, discontinuity: false }];
    const live = renderMediaPlaylist(liveInput({ segments }));
    const ended = renderMediaPlaylist(liveInput({ segments, ended: true }));
    assert.equal(parseMedia(live).endlist, false);
    assert.equal(parseMedia(ended).endlist, true);
    assert.ok(ended.endsWith('#EXT-X-ENDLIST\n'));
    assert.ok(!live.includes('#EXT-X-ENDLIST'));
  });

  test('writes EXT-X-PLAYLIST-TYPE:VOD for a recording, and no playlist type for a live window', () => {
    const segments = [{ uri: '0.ts', durationMs: 2000, discontinuity: false }, { uri: '1.ts', durationMs: 1500, discontinuity: true }];
    const vod = renderMediaPlaylist(liveInput({ segments, ended: true, playlistType: 'VOD' }));
    const parsed = parseMedia(vod);
    assert.equal(parsed.playlistType, 'VOD');
    assert.equal(parsed.endlist, true);
    assert.deepEqual(parsed.segments.map((s) => s.duration), [2, 1.5]);
    assert.ok(!renderMediaPlaylist(liveInput({ segments })).includes('#EXT-X-PLAYLIST-TYPE'));
  });

  test('rejects invalid sequence numbers and target durations, naming the field', () => {
    const cases: Array<[Partial<MediaPlaylistInput>, RegExp]> = [
      [{ mediaSequence: -1 }, /^mediaSequence /],
      [{ mediaSequence: 1.5 }, /^mediaSequence /],
      [{ mediaSequence: Number.NaN }, /^mediaSequence /],
      [{ mediaSequence: 2 ** 53 }, /^mediaSequence /],
      [{ discontinuitySequence: -2 }, /^discontinuitySequence /],
      [{ discontinuitySequence: 0.1 }, /^discontinuitySequence /],
      [{ minTargetDurationS: 0 }, /^minTargetDurationS /],
      [{ minTargetDurationS: 2.5 }, /^minTargetDurationS /],
    ];
    for (const [override, message] of cases) {
      assert.throws(() => renderMediaPlaylist(liveInput(override)), { name: 'Error', message }, JSON.stringify(override));
    }
  });

  test('rejects invalid segment durations and URIs, naming the segment and field', () => {
    const bad: Array<[{ uri: string; durationMs: number }, RegExp]> = [
      [{ uri: 'a.ts', durationMs: 0 }, /^segments\[1\]\.durationMs /],
      [{ uri: 'a.ts', durationMs: 0.4 }, /^segments\[1\]\.durationMs /],
      [{ uri: 'a.ts', durationMs: -2000 }, /^segments\[1\]\.durationMs /],
      [{ uri: 'a.ts', durationMs: Number.POSITIVE_INFINITY }, /^segments\[1\]\.durationMs /],
      [{ uri: 'a.ts', durationMs: Number.NaN }, /^segments\[1\]\.durationMs /],
      [{ uri: '', durationMs: 2000 }, /^segments\[1\]\.uri /],
      [{ uri: 'a.ts\n#EXT-X-ENDLIST', durationMs: 2000 }, /^segments\[1\]\.uri /],
      [{ uri: 'a.ts\r', durationMs: 2000 }, /^segments\[1\]\.uri /],
      [{ uri: 'a".ts', durationMs: 2000 }, /^segments\[1\]\.uri /],
      [{ uri: 'a b.ts', durationMs: 2000 }, /^segments\[1\]\.uri /],
      [{ uri: '#EXT-X-ENDLIST', durationMs: 2000 }, /^segments\[1\]\.uri /],
    ];
    for (const [segment, message] of bad) {
      const segments = [
        { uri: '0.ts', durationMs: 2000, discontinuity: false },
        { ...segment, discontinuity: false },
      ];
      assert.throws(() => renderMediaPlaylist(liveInput({ segments })), { name: 'Error', message }, JSON.stringify(segment));
    }
  });
});

describe('renderMasterPlaylist', () => {
  const variants: VariantStream[] = [
    {
      name: 'source',
      uri: 'abc/source.m3u8',
      bandwidthBps: 6_400_000,
      averageBandwidthBps: 5_100_000,
      width: 1920,
      height: 1080,
      codecs: 'avc1.640028,mp4a.40.2',
      frameRate: 30000 / 1001,
    },
    {
      name: '720p',
      uri: 'abc/720p.m3u8',
      bandwidthBps: 3_000_000,
      width: 1280,
      height: 720,
      codecs: 'avc1.64001f,mp4a.40.2',
      frameRate: 30,
    },
    { name: '360p', uri: 'abc/360p.m3u8', bandwidthBps: 800_000, width: 640, height: 360 },
  ];

  test('three variants round-trip bandwidth, resolution, codecs and frame rate in the given order', () => {
    const playlist = parseMaster(renderMasterPlaylist(variants));
    assert.equal(playlist.version, 3);
    assert.equal(playlist.independentSegments, false);
    assert.deepEqual(
      playlist.variants.map((v) => ({
        uri: v.uri,
        bandwidth: v.bandwidth,
        averageBandwidth: v.averageBandwidth,
        resolution: v.resolution,
        codecs: v.codecs,
        frameRate: v.frameRate,
      })),
      [
        {
          uri: 'abc/source.m3u8',
          bandwidth: 6_400_000,
          averageBandwidth: 5_100_000,
          resolution: { width: 1920, height: 1080 },
          codecs: 'avc1.640028,mp4a.40.2',
          frameRate: 29.97,
        },
        {
          uri: 'abc/720p.m3u8',
          bandwidth: 3_000_000,
          averageBandwidth: undefined,
          resolution: { width: 1280, height: 720 },
          codecs: 'avc1.64001f,mp4a.40.2',
          frameRate: 30,
        },
        {
          uri: 'abc/360p.m3u8',
          bandwidth: 800_000,
          averageBandwidth: undefined,
          resolution: { width: 640, height: 360 },
          codecs: undefined,
          frameRate: undefined,
        },
      ],
    );
  });

  test('writes the exact attribute lists, omitting absent optional attributes', () => {
    assert.equal(
      renderMasterPlaylist(variants),
      [
        '#EXTM3U',
        '#EXT-X-VERSION:3',
        '#EXT-X-STREAM-INF:BANDWIDTH=6400000,AVERAGE-BANDWIDTH=5100000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=29.970',
        'abc/source.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000',
        'abc/720p.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360',
        'abc/360p.m3u8',
        '',
      ].join('\n'),
    );
  });

  test('writes EXT-X-INDEPENDENT-SEGMENTS only when asked', () => {
    const withTag = renderMasterPlaylist(variants, { independentSegments: true });
    assert.ok(withTag.startsWith('#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n'));
    assert.equal(parseMaster(withTag).independentSegments, true);
    assert.ok(!renderMasterPlaylist(variants).includes('INDEPENDENT-SEGMENTS'));
  });

  test('an audio-only variant has no RESOLUTION; a variant with only one of width and height is refused', () => {
    const text = renderMasterPlaylist([{ name: 'source', uri: 'abc/source.m3u8', bandwidthBps: 130_000, codecs: 'mp4a.40.2' }]);
    assert.equal(text, '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=130000,CODECS="mp4a.40.2"\nabc/source.m3u8\n');
    const parsed = parseMaster(text).variants[0];
    assert.equal(parsed?.resolution, undefined);
    assert.equal(parsed?.codecs, 'mp4a.40.2');
    assert.throws(() => renderMasterPlaylist([{ name: 'x', uri: 'a.m3u8', bandwidthBps: 1, width: 640 }]), { message: /^variants\[0\] \(x\)\.height / });
  });

  test('rounds the frame rate to three decimals', () => {
    const text = renderMasterPlaylist([{ uri: 'a.m3u8', bandwidthBps: 1, width: 2, height: 2, frameRate: 24000 / 1001 }]);
    assert.match(text, /,FRAME-RATE=23\.976\n/);
    assert.equal(parseMaster(text).variants[0]?.frameRate, 23.976);
  });

  test('rejects an empty variant list', () => {
    assert.throws(() => renderMasterPlaylist([]), { name: 'Error', message: /^variants / });
  });

  test('rejects invalid variant fields, naming the variant and field', () => {
    const good: VariantStream = { name: '720p', uri: 'a.m3u8', bandwidthBps: 1000, width: 1280, height: 720 };
    const cases: Array<[Partial<VariantStream>, RegExp]> = [
      [{ bandwidthBps: 0 }, /^variants\[1\] \(720p\)\.bandwidthBps /],
      [{ bandwidthBps: 1.5 }, /^variants\[1\] \(720p\)\.bandwidthBps /],
      [{ averageBandwidthBps: -1 }, /^variants\[1\] \(720p\)\.averageBandwidthBps /],
      [{ width: 0 }, /^variants\[1\] \(720p\)\.width /],
      [{ height: 720.5 }, /^variants\[1\] \(720p\)\.height /],
      [{ frameRate: 0 }, /^variants\[1\] \(720p\)\.frameRate /],
      [{ frameRate: Number.NaN }, /^variants\[1\] \(720p\)\.frameRate /],
      [{ codecs: 'avc1.64001f"' }, /^variants\[1\] \(720p\)\.codecs /],
      [{ codecs: 'avc1.64001f\nmp4a.40.2' }, /^variants\[1\] \(720p\)\.codecs /],
      [{ codecs: '' }, /^variants\[1\] \(720p\)\.codecs /],
      [{ uri: 'a.m3u8\r\n#EXT-X-ENDLIST' }, /^variants\[1\] \(720p\)\.uri /],
      [{ uri: 'a".m3u8' }, /^variants\[1\] \(720p\)\.uri /],
      [{ uri: '' }, /^variants\[1\] \(720p\)\.uri /],
    ];
    for (const [override, message] of cases) {
      assert.throws(
        () => renderMasterPlaylist([good, { ...good, ...override }]),
        { name: 'Error', message },
        JSON.stringify(override),
      );
    }
    assert.throws(
      () => renderMasterPlaylist([{ uri: 'a.m3u8', bandwidthBps: -5, width: 1, height: 1 }]),
      { name: 'Error', message: /^variants\[0\]\.bandwidthBps / },
    );
  });
});

test('master variants are listed by bandwidth, highest first, the source first and no rendition above it', () => {
  const source = { uri: 's/source.m3u8', bandwidthBps: 560_000, name: 'source' };
  const low = { uri: 's/144p.m3u8', bandwidthBps: 150_000, name: '144p' };
  const mid = { uri: 's/240p.m3u8', bandwidthBps: 330_000, name: '240p' };
  const same = { uri: 's/360p.m3u8', bandwidthBps: 1_500_000, name: '360p' };
  assert.deepEqual(orderMasterVariants(source, [low, same, mid]).map((v) => v.name), ['source', '240p', '144p']);
  // Equal bandwidths keep the ladder order; a rendition at the source's bandwidth is still listed.
  const twin = { ...mid, uri: 's/240b.m3u8', name: '240b' };
  assert.deepEqual(orderMasterVariants(source, [mid, twin, { ...low, bandwidthBps: 560_000 }]).map((v) => v.name), ['source', '144p', '240p', '240b']);
  assert.deepEqual(orderMasterVariants(source, []).map((v) => v.name), ['source']);
});

test('a source unfit for players goes last behind every rendition by bandwidth, whatever its own bandwidth', () => {
  const source = { uri: 's/source.m3u8', bandwidthBps: 900_000, name: 'source' };
  const playable = { uri: 's/source-playable.m3u8', bandwidthBps: 1_100_000, name: 'source-playable' };
  const small = { uri: 's/240p.m3u8', bandwidthBps: 200_000, name: '240p' };
  assert.deepEqual(orderMasterVariants(source, [small, playable], { sourceLast: true }).map((v) => v.name), ['source-playable', '240p', 'source']);
  assert.deepEqual(orderMasterVariants(source, [], { sourceLast: true }).map((v) => v.name), ['source']);
});

test('a source withheld for its marked copy (watermark applyToSource) is not listed at all; without renditions it is listed alone', () => {
  const source = { uri: 's/source.m3u8', bandwidthBps: 600_000, name: 'source' };
  const marked = { uri: 's/source-marked.m3u8', bandwidthBps: 620_000, name: 'source-marked' };
  const small = { uri: 's/240p.m3u8', bandwidthBps: 250_000, name: '240p' };
  assert.deepEqual(orderMasterVariants(source, [small, marked], { sourceHidden: true }).map((v) => v.name), ['source-marked', '240p']);
  assert.deepEqual(orderMasterVariants(source, [small, marked], { sourceHidden: true, sourceLast: true }).map((v) => v.name), ['source-marked', '240p']);
  assert.deepEqual(orderMasterVariants(source, [], { sourceHidden: true }).map((v) => v.name), ['source']);
  assert.deepEqual(orderMasterVariants(source, [small, marked]).map((v) => v.name), ['source', '240p'], 'not withheld: the source first, nothing above it');
});
