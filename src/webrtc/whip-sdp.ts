/**
 * The parts of a WHIP offer (an SDP offer, RFC 8866, in the JSEP form of RFC 9429) that a
 * WHIP ingest needs: its media sections (kind, `a=mid`, the offered codecs with payload
 * type, clock rate, channels and `a=fmtp`), the codec the answer takes for each, and the
 * `a=candidate` lines it keeps. Pure functions; no WebRTC library here.
 */
import { GatewayError } from '../errors/gateway-error.ts';

/** One `a=rtpmap` of a media section, with its `a=fmtp` parameters. */
export interface OfferedCodec {
  readonly payloadType: number;
  /** Encoding name as written (`H264`, `VP8`, `opus`...). */
  readonly name: string;
  readonly clockRate: number;
  /** Audio channels (the rtpmap's third field); 1 when absent. */
  readonly channels: number;
  /** `a=fmtp` parameters, '' when none. */
  readonly fmtp: string;
}

/** One `m=` section of the offer. */
export interface OfferedMedia {
  readonly kind: 'audio' | 'video' | 'application' | string;
  readonly mid: string;
  /** `sendonly`, `sendrecv`, `recvonly`, `inactive` (default `sendrecv`, RFC 8866 §6.7). */
  readonly direction: string;
  readonly codecs: readonly OfferedCodec[];
}

/** Longest offer accepted, bytes (a browser's offer with every codec is about 6 KB). */
export const MAX_OFFER_BYTES = 64 * 1024;

/**
 * Parses an SDP offer's media sections.
 * @throws GatewayError INVALID_REQUEST (400) when the text is not an SDP offer: it must start
 *   with `v=0`, have an `o=` line and at least one `m=` line, and every media section a `a=mid`
 *   (WHIP offers use BUNDLE, RFC 9725 §4.2).
 */
export function parseOffer(sdp: string): OfferedMedia[] {
  const bad = (why: string): never => {
    throw new GatewayError('INVALID_REQUEST', `the body is not an SDP offer (RFC 8866): ${why}`);
  };
  if (Buffer.byteLength(sdp) > MAX_OFFER_BYTES) bad(`longer than ${MAX_OFFER_BYTES} bytes`);
  const lines = sdp.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l !== '');
  if (lines[0] !== 'v=0') bad('it must start with the line v=0');
  if (!lines.some((l) => l.startsWith('o='))) bad('no o= line');
  if (lines.some((l) => !/^[a-z]=/.test(l))) bad('a line is not of the form <letter>=<value>');
  const sections: { kind: string; mid?: string; direction: string; pts: number[]; rtpmap: Map<number, string>; fmtp: Map<number, string> }[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const fields = line.slice(2).split(' ');
      if (fields.length < 4) bad(`malformed m= line "${line.slice(0, 60)}"`);
      sections.push({ kind: fields[0]!, direction: 'sendrecv', pts: fields.slice(3).map(Number).filter(Number.isInteger), rtpmap: new Map(), fmtp: new Map() });
      continue;
    }
    const section = sections.at(-1);
    if (!section) continue;
    if (line.startsWith('a=mid:')) section.mid = line.slice(6);
    else if (/^a=(sendonly|recvonly|sendrecv|inactive)$/.test(line)) section.direction = line.slice(2);
    else {
      const rtpmap = /^a=rtpmap:(\d+) (.+)$/.exec(line);
      if (rtpmap) section.rtpmap.set(Number(rtpmap[1]), rtpmap[2]!);
      const fmtp = /^a=fmtp:(\d+) (.+)$/.exec(line);
      if (fmtp) section.fmtp.set(Number(fmtp[1]), fmtp[2]!);
    }
  }
  if (sections.length === 0) bad('no m= line (media section)');
  return sections.map((s, i) => {
    if (s.mid === undefined || s.mid === '') bad(`media section ${i} has no a=mid`);
    const codecs: OfferedCodec[] = [];
    for (const pt of s.pts) {
      const map = s.rtpmap.get(pt);
      if (!map) continue;
      const [name = '', clock = '0', channels = '1'] = map.split('/');
      codecs.push({ payloadType: pt, name, clockRate: Number(clock), channels: Number(channels) || 1, fmtp: s.fmtp.get(pt) ?? '' });
    }
    return { kind: s.kind, mid: s.mid!, direction: s.direction, codecs };
  });
}

/** The `name=value` pairs of an `a=fmtp` parameter list, names lower-cased. */
export function fmtpParams(fmtp: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of fmtp.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

/** Video codec the ingest takes, in order of preference. */
export type WhipVideoCodec = 'H264' | 'VP8' | 'VP9';

/**
 * The video codec the answer takes from one offered section: H.264 with packetization mode 1
 * (RFC 6184 §5.8; mode 0 sends one NAL unit per packet and is not reassembled by ffmpeg's
 * FU-A path the same way) in Constrained Baseline `42e0xx`, then Baseline `4200xx`, then Main
 * `4d00xx` or High `6400xx` (all copied into the stream untouched), then VP8, then VP9
 * profile 0 (both re-encoded to H.264). Undefined when none is offered.
 */
export function chooseVideoCodec(codecs: readonly OfferedCodec[]): (OfferedCodec & { codec: WhipVideoCodec }) | undefined {
  const h264Rank = (c: OfferedCodec): number => {
    const p = fmtpParams(c.fmtp);
    if (p.get('packetization-mode') !== '1') return -1;
    const profile = (p.get('profile-level-id') ?? '42e01f').toLowerCase();
    return profile.startsWith('42e0') ? 4 : profile.startsWith('4200') ? 3 : profile.startsWith('4d') ? 2 : profile.startsWith('64') ? 1 : -1;
  };
  let best: OfferedCodec | undefined;
  for (const c of codecs) {
    if (c.name.toUpperCase() === 'H264' && c.clockRate === 90000 && h264Rank(c) >= 0 && (!best || h264Rank(c) > h264Rank(best))) best = c;
  }
  if (best) return { ...best, codec: 'H264' };
  const vp8 = codecs.find((c) => c.name.toUpperCase() === 'VP8' && c.clockRate === 90000);
  if (vp8) return { ...vp8, codec: 'VP8' };
  const vp9 = codecs.find((c) => c.name.toUpperCase() === 'VP9' && c.clockRate === 90000 && (fmtpParams(c.fmtp).get('profile-id') ?? '0') === '0');
  if (vp9) return { ...vp9, codec: 'VP9' };
  return undefined;
}

/** The audio codec the answer takes: Opus at 48 kHz (RFC 7587). Undefined when not offered. */
export function chooseAudioCodec(codecs: readonly OfferedCodec[]): OfferedCodec | undefined {
  return codecs.find((c) => c.name.toLowerCase() === 'opus' && c.clockRate === 48000);
}

/** Whether an address is a loopback address (127.0.0.0/8, ::1). */
export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/**
 * The offer without the `a=candidate` lines `keep` refuses (RFC 8839 §5.1 syntax: the
 * connection address is the fifth field). An ICE agent bound to loopback can only reach
 * loopback candidates; connectivity checks to the others would only time out.
 */
export function filterCandidates(sdp: string, keep: (address: string) => boolean): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp.split(/\r?\n/).filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    const address = line.split(' ')[4];
    return address !== undefined && keep(address);
  }).join(eol);
}

/**
 * The `a=candidate` lines and their `a=mid` of a trickle ICE fragment (`application/trickle-ice-sdpfrag`,
 * RFC 8840 §4), for `PATCH` of a WHIP session (RFC 9725 §4.3.1). Lines before any `a=mid`
 * belong to `defaultMid`.
 */
export function fragmentCandidates(fragment: string, defaultMid: string): { candidate: string; mid: string }[] {
  const out: { candidate: string; mid: string }[] = [];
  let mid = defaultMid;
  for (const raw of fragment.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('a=mid:')) mid = line.slice(6);
    else if (line.startsWith('a=candidate:')) out.push({ candidate: line.slice(2), mid });
  }
  return out;
}
