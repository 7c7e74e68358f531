/**
 * ts-measure on crafted and corrupted transport streams: a well-formed file gives exact
 * numbers; anything else gives a TsMeasureError (the transcoder's signal to run ffprobe),
 * never a number. Real-output checks are in test/integration/media/ts-measure.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { h264SpsPictureSize } from '../../../src/media/h264.ts';
import { discontinuityAt, measureTs, packetAt, pusiAt, randomAccessAt, TsMeasureError, type TsMeasureFailure } from '../../../src/media/ts-measure.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

/** SPS NAL units taken from real x264 outputs of the transcoder (and a source), with ffprobe's view of them. */
const SPS = {
  high426x240: { sps: hex('67640015acd941b1fe4e100000030010002bf200f162d960'), codecs: 'avc1.640015', width: 426, height: 240 },
  high1920x1080: { sps: hex('67640028acd940780227e584000003000400000300f03c60c658'), codecs: 'avc1.640028', width: 1920, height: 1080 },
  baseline256x144: { sps: hex('6742c00cda0404e840000003004000afc803c50aa8'), codecs: 'avc1.42c00c', width: 256, height: 144 },
  constrainedHighIntra300x168: { sps: hex('6764100cacb8262fdcb0800000030080015f9002'), codecs: 'avc1.64100c', width: 300, height: 168 },
};

// ---- a small, independent TS writer --------------------------------------------------

function crc32Mpeg2(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = (crc & 0x80000000) !== 0 ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
  }
  return crc >>> 0;
}

/** A long-form PSI section: header (section_syntax_indicator 1, version 0, current) + body + CRC_32. */
function section(tableId: number, idExt: number, body: number[]): Uint8Array {
  const length = 5 + body.length + 4;
  const head = [tableId, 0xb0 | (length >> 8), length & 0xff, idExt >> 8, idExt & 0xff, 0xc1, 0x00, 0x00, ...body];
  const crc = crc32Mpeg2(Uint8Array.from(head));
  return Uint8Array.from([...head, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff]);
}

/** One 188-byte packet; payloads under 184 bytes are padded with an adaptation field of stuffing. */
function packet(pid: number, pusi: boolean, cc: number, payload: Uint8Array): Uint8Array {
  assert.ok(payload.length <= 184);
  const p = new Uint8Array(188).fill(0xff);
  p[0] = 0x47;
  p[1] = (pusi ? 0x40 : 0) | (pid >> 8);
  p[2] = pid & 0xff;
  if (payload.length === 184) {
    p[3] = 0x10 | cc;
    p.set(payload, 4);
  } else {
    p[3] = 0x30 | cc;
    p[4] = 183 - payload.length;
    if (p[4] > 0) p[5] = 0x00;
    p.set(payload, 188 - payload.length);
  }
  return p;
}

/** Splits one PES packet into TS packets on `pid`, continuing the PID's continuity counter. */
function pesPackets(pid: number, pes: Uint8Array, counter: { cc: number }): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < pes.length; i += 184) {
    out.push(packet(pid, i === 0, counter.cc, pes.subarray(i, i + 184)));
    counter.cc = (counter.cc + 1) & 0x0f;
  }
  return out;
}

/** A video PES (stream_id 0xE0, unbounded length, PTS only) around `es`. */
function videoPes(es: number[]): Uint8Array {
  return Uint8Array.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, ...es]);
}

const VIDEO_PID = 0x100;
const AUDIO_PID = 0x101;
const PMT_PID = 0x1000;

interface Crafted { streams?: [number, number][]; frames?: number; sps?: Uint8Array | undefined; leadingSeiBytes?: number; pat?: boolean }

/** PAT, PMT, then `frames` video PES packets; the first holds AUD, (SEI), SPS, PPS and a slice. */
function craftTs(options: Crafted = {}): Uint8Array[] {
  const streams = options.streams ?? [[0x1b, VIDEO_PID], [0x0f, AUDIO_PID]];
  const pmtBody = [0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0x00,
    ...streams.flatMap(([type, pid]) => [type, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00])];
  const pat = section(0x00, 1, [0x00, 0x01, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]);
  const pmt = section(0x02, 1, pmtBody);
  const packets: Uint8Array[] = [];
  if (options.pat !== false) packets.push(packet(0, true, 0, Uint8Array.from([0, ...pat])));
  packets.push(packet(PMT_PID, true, 0, Uint8Array.from([0, ...pmt])));
  const counter = { cc: 0 };
  const sps = 'sps' in options ? options.sps : SPS.high426x240.sps;
  for (let f = 0; f < (options.frames ?? 3); f++) {
    const es = [0, 0, 0, 1, 0x09, 0xf0];
    if (f === 0) {
      if (options.leadingSeiBytes) es.push(0, 0, 0, 1, 0x06, ...new Array<number>(options.leadingSeiBytes).fill(0x55));
      if (sps) es.push(0, 0, 0, 1, ...sps);
      es.push(0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0);
    }
    es.push(0, 0, 1, f === 0 ? 0x65 : 0x41, ...new Array<number>(300 + f * 50).fill(0x9a));
    packets.push(...pesPackets(VIDEO_PID, videoPes(es), counter));
  }
  return packets;
}

const concat = (packets: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(packets));

function refused(data: Uint8Array, failure: TsMeasureFailure, message: RegExp): void {
  assert.throws(() => measureTs(data), (e: unknown) => {
    assert.ok(e instanceof TsMeasureError, `expected TsMeasureError, got ${String(e)}`);
    assert.equal(e.failure, failure);
    assert.match(e.message, message);
    return true;
  });
}

// ---- SPS ------------------------------------------------------------------------------

test('picture size from real SPS units: cropping, emulation-prevention bytes, Baseline without the High fields', () => {
  for (const [name, v] of Object.entries(SPS)) {
    assert.deepEqual(h264SpsPictureSize(v.sps), { width: v.width, height: v.height }, name);
  }
});

test('an SPS cut short is refused as malformed, not read as a size', () => {
  assert.throws(() => h264SpsPictureSize(SPS.high1920x1080.sps.subarray(0, 6)), (e: TsMeasureError) => e.failure === 'malformed');
});

// ---- per-packet field readers -----------------------------------------------------------

test('pusiAt, randomAccessAt and discontinuityAt read the header and adaptation-field flags, and agree with packetAt, with and without an adaptation field', () => {
  /** A packet on PID 0x100 with header byte 3 = `b3` (adaptation_field_control and cc) and bytes 4.. = `rest`, 0xff after. */
  const raw = (pusi: boolean, b3: number, rest: number[]): Uint8Array => {
    const p = new Uint8Array(188).fill(0xff);
    p.set([0x47, (pusi ? 0x40 : 0) | 0x01, 0x00, b3, ...rest]);
    return p;
  };
  const cases: { name: string; p: Uint8Array; pusi: boolean; randomAccess: boolean; discontinuity?: boolean }[] = [
    // No adaptation field (01): bytes 4-5 are payload, even when they look like a length and a flags byte with the bit set.
    { name: 'payload only, PES start', p: raw(true, 0x10, [0x07, 0xc0]), pusi: true, randomAccess: false },
    { name: 'payload only, continuation', p: raw(false, 0x11, [0x07, 0x40]), pusi: false, randomAccess: false },
    // Adaptation field and payload (11).
    { name: 'adaptation field with random_access_indicator', p: raw(true, 0x32, [0x07, 0x40]), pusi: true, randomAccess: true },
    { name: 'adaptation field with discontinuity_indicator only', p: raw(true, 0x33, [0x01, 0x80]), pusi: true, randomAccess: false, discontinuity: true },
    { name: 'adaptation field with both indicators', p: raw(true, 0x33, [0x01, 0xc0]), pusi: true, randomAccess: true, discontinuity: true },
    { name: 'adaptation field of length 0 (no flags byte; byte 5 is payload)', p: raw(false, 0x34, [0x00, 0xc0]), pusi: false, randomAccess: false },
    // Adaptation field only (10): length 183.
    { name: 'adaptation field only, random_access_indicator', p: raw(false, 0x25, [183, 0x50]), pusi: false, randomAccess: true },
    { name: 'adaptation field only, no flags set', p: raw(false, 0x25, [183, 0x00]), pusi: false, randomAccess: false },
  ];
  for (const c of cases) {
    // At a non-zero offset too: the readers index from `offset`, not from the start of the buffer.
    const data = Uint8Array.from(Buffer.concat([raw(false, 0x10, [0x07, 0x40]), c.p]));
    assert.equal(pusiAt(data, 188), c.pusi, `${c.name}: pusiAt`);
    assert.equal(randomAccessAt(data, 188), c.randomAccess, `${c.name}: randomAccessAt`);
    assert.equal(discontinuityAt(data, 188), c.discontinuity ?? false, `${c.name}: discontinuityAt`);
    const parsed = packetAt(data, 188);
    assert.equal(parsed.discontinuity, c.discontinuity ?? false, `${c.name}: packetAt discontinuity`);
    assert.equal(parsed.pusi, c.pusi, `${c.name}: packetAt pusi`);
    assert.equal(parsed.randomAccess, c.randomAccess, `${c.name}: packetAt randomAccess`);
  }
});

// ---- well-formed streams --------------------------------------------------------------

test('a crafted stream: frames are the video PES packets, codecs and size come from the SPS, streams from the PMT', () => {
  const data = concat(craftTs({ frames: 5 }));
  const m = measureTs(data);
  assert.equal(m.frames, 5);
  assert.equal(m.bytes, data.length);
  assert.equal(m.videoCodecs, 'avc1.640015');
  assert.deepEqual([m.width, m.height], [426, 240]);
  assert.deepEqual(m.streams, [{ pid: VIDEO_PID, streamType: 0x1b }, { pid: AUDIO_PID, streamType: 0x0f }]);
});

test('an SPS that straddles two TS packets is found: the first PES payload is gathered before searching', () => {
  for (const lead of [150, 160, 166, 170, 175]) {
    const m = measureTs(concat(craftTs({ leadingSeiBytes: lead, sps: SPS.high1920x1080.sps })));
    assert.equal(m.videoCodecs, 'avc1.640028', `lead ${lead}`);
    assert.deepEqual([m.width, m.height], [1920, 1080]);
  }
});

test('packets of other PIDs between video packets do not count; a video-only PMT is reported as such', () => {
  const packets = craftTs({ streams: [[0x1b, VIDEO_PID]], frames: 4 });
  const withNull = packets.flatMap((p, i) => (i % 2 === 0 ? [p, packet(0x1fff, false, 0, new Uint8Array(184))] : [p]));
  const m = measureTs(concat(withNull));
  assert.equal(m.frames, 4);
  assert.deepEqual(m.streams, [{ pid: VIDEO_PID, streamType: 0x1b }]);
});

test('a continuity_counter jump flagged as a discontinuity is accepted; adaptation-field-only video packets neither count nor break continuity', () => {
  const packets = craftTs({ frames: 4 }).map((p) => Uint8Array.from(p));
  const pid = (p: Uint8Array): number => ((p[1]! & 0x1f) << 8) | p[2]!;
  // The last packet of the first PES is padded: an adaptation field with a flags byte.
  const k = packets.findIndex((p, i) => pid(p) === VIDEO_PID && (p[3]! & 0x20) !== 0 && p[4]! > 0 && (packets[i + 1]![1]! & 0x40) !== 0);
  assert.ok(k > 2);
  for (let i = k; i < packets.length; i++) if (pid(packets[i]!) === VIDEO_PID) packets[i]![3] = (packets[i]![3]! & 0xf0) | ((packets[i]![3]! + 5) & 0x0f);
  refused(concat(packets), 'malformed', new RegExp(`continuity_counter jumps .* at packet ${k} `));
  packets[k]![5]! |= 0x80; // discontinuity_indicator
  assert.equal(measureTs(concat(packets)).frames, 4);
  // An adaptation field only (adaptation_field_control 10, e.g. a PCR): no payload, its counter not incremented.
  const afOnly = new Uint8Array(188).fill(0xff);
  afOnly.set([0x47, VIDEO_PID >> 8, VIDEO_PID & 0xff, 0x20 | (packets[k + 1]![3]! & 0x0f), 183, 0x00]);
  const m = measureTs(concat([...packets.slice(0, k + 2), afOnly, ...packets.slice(k + 2)]));
  assert.equal(m.frames, 4);
  assert.deepEqual([m.width, m.height, m.videoCodecs], [426, 240, 'avc1.640015']);
});

test('a PMT section spread over several packets (long ES_info) is gathered across them', () => {
  const descriptor = (n: number): number[] => [0x05, n - 2, ...new Array<number>(n - 2).fill(0x41)]; // registration_descriptor-shaped filler
  const es = (type: number, pid: number, info: number[]): number[] => [type, 0xe0 | (pid >> 8), pid & 0xff, 0xf0 | (info.length >> 8), info.length & 0xff, ...info];
  const pmt = section(0x02, 1, [0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0x00, ...es(0x1b, VIDEO_PID, descriptor(200)), ...es(0x0f, AUDIO_PID, descriptor(250))]);
  assert.ok(pmt.length > 2 * 184, `section of ${pmt.length} bytes spans three packets`);
  const payload = Uint8Array.from([0, ...pmt]);
  const pmtPackets: Uint8Array[] = [];
  for (let i = 0, cc = 0; i < payload.length; i += 184, cc++) pmtPackets.push(packet(PMT_PID, i === 0, cc, payload.subarray(i, i + 184)));
  const crafted = craftTs({ frames: 2 });
  const m = measureTs(concat([crafted[0]!, ...pmtPackets, ...crafted.slice(2)]));
  assert.deepEqual(m.streams, [{ pid: VIDEO_PID, streamType: 0x1b }, { pid: AUDIO_PID, streamType: 0x0f }]);
  assert.equal(m.frames, 2);
});

// ---- refused: a signal to fall back to ffprobe, never a number -------------------------

test('empty, truncated, M2TS-sized and random data are malformed', () => {
  const good = concat(craftTs());
  refused(new Uint8Array(0), 'malformed', /empty/);
  refused(good.subarray(0, good.length - 100), 'malformed', /whole number of 188-byte/);
  refused(good.subarray(0, 187), 'malformed', /whole number of 188-byte/);
  refused(new Uint8Array(192 * 10).fill(0x47), 'malformed', /whole number of 188-byte|sync|PAT/);
  let seed = 12345;
  const random = Uint8Array.from({ length: 188 * 64 }, () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; });
  refused(random, 'malformed', /sync byte/);
  // Random payloads behind valid sync bytes: still no PAT/PMT to trust.
  for (let i = 0; i < random.length; i += 188) random[i] = 0x47;
  assert.throws(() => measureTs(random), (e: unknown) => e instanceof TsMeasureError && e.failure === 'malformed');
});

test('no PAT, or a PAT/PMT whose CRC does not match, is malformed', () => {
  refused(concat(craftTs({ pat: false })), 'malformed', /no PAT/);
  const packets = craftTs();
  const badPat = Uint8Array.from(packets[0]!);
  badPat[188 - 3]! ^= 0x01; // the section sits at the end of the packet, after the stuffing: a CRC_32 byte
  refused(concat([badPat, ...packets.slice(1)]), 'malformed', /PAT: CRC_32 mismatch/);
  const badPmt = Uint8Array.from(packets[1]!);
  badPmt[188 - 10]! ^= 0x40; // an ES loop byte
  refused(concat([packets[0]!, badPmt, ...packets.slice(2)]), 'malformed', /PMT: CRC_32 mismatch/);
});

test('a lost or corrupted video packet is malformed: continuity jump, sync byte, transport error, broken PES header', () => {
  const packets = craftTs({ frames: 4 });
  refused(concat([...packets.slice(0, 4), ...packets.slice(5)]), 'malformed', /continuity_counter jumps/);
  const noSync = packets.map((p) => Uint8Array.from(p));
  noSync[3]![0] = 0x48;
  refused(concat(noSync), 'malformed', /no sync byte 0x47 at offset 564/);
  const tei = packets.map((p) => Uint8Array.from(p));
  tei[3]![1]! |= 0x80;
  refused(concat(tei), 'malformed', /transport_error_indicator/);
  const badPes = packets.map((p) => Uint8Array.from(p));
  const first = badPes[2]!; // first video packet: PES header right after the 4-byte header (184-byte payload)
  assert.equal(first[4], 0);
  first[6] = 0x02; // 00 00 02: no packet_start_code_prefix
  refused(concat(badPes), 'malformed', /without a video PES header/);
});

test('not H.264 (an HEVC rendition), or two video streams, is unsupported', () => {
  refused(concat(craftTs({ streams: [[0x24, VIDEO_PID], [0x0f, AUDIO_PID]] })), 'unsupported', /stream_type 0x24 is not H.264/);
  refused(concat(craftTs({ streams: [[0x1b, VIDEO_PID], [0x1b, 0x102]] })), 'unsupported', /2 video streams/);
  refused(concat(craftTs({ streams: [[0x0f, AUDIO_PID]] })), 'unsupported', /0 video streams/);
});

test('no video frame, or no SPS in the first video PES packet, is incomplete', () => {
  refused(concat(craftTs({ frames: 0 })), 'incomplete', /no video PES packet/);
  refused(concat(craftTs({ sps: undefined })), 'incomplete', /no SPS/);
});
