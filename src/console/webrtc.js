/**
 * WHIP publishing and WHEP playback from the browser (WHIP: RFC 9725; WHEP: the IETF WHEP
 * draft): one SDP offer POSTed as `application/sdp`, `201 Created` with the answer and the
 * session's `Location`, `DELETE <Location>` to end. Candidates are gathered before the offer
 * is sent (no trickle ICE), which on a LAN or loopback takes well under a second.
 *
 * The gateway serves these endpoints when it was built with them: an answer that no such
 * route exists is reported as {@link EndpointMissing}, which the console uses to fall back
 * to HLS or to say that publishing needs RTMP.
 */
import { errorOf } from './api.js';

/** The gateway has no such endpoint (404 "no route"). */
export class EndpointMissing extends Error {
  constructor(what) {
    super(`this gateway does not serve ${what}`);
    this.name = 'EndpointMissing';
  }
}

/** Longest wait for ICE candidate gathering before the offer is sent as it is, ms. */
const ICE_GATHERING_MS = 2000;

function iceGathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHERING_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/**
 * Offers, POSTs the offer to `url`, applies the answer.
 * @returns the session resource URL (from `Location`), or undefined when the answer named none
 * @throws EndpointMissing, or ApiError for any other non-201 answer
 */
async function negotiate(pc, url, headers, what) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
    cache: 'no-store',
    credentials: 'omit',
  });
  if (res.status !== 201) {
    const err = await errorOf(res);
    // A gateway without the endpoint: `/whep/<id>` matches no route; `/whip` is taken for
    // an unknown AI pipeline name by the AI API's `POST /<pipeline>`.
    if ((res.status === 404 && /^no route/.test(err.message)) || (res.status === 400 && /^unknown pipeline/.test(err.message))) {
      throw new EndpointMissing(what);
    }
    throw err;
  }
  const location = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return location ? new URL(location, new URL(url, window.location.href)).href : undefined;
}

/** A negotiated session: its peer connection and `close()` (DELETE of the resource, then pc.close()). */
function session(pc, location, headers) {
  let closed = false;
  return {
    pc,
    location,
    close() {
      if (closed) return;
      closed = true;
      pc.close();
      if (location) void fetch(location, { method: 'DELETE', headers, credentials: 'omit' }).catch(() => undefined);
    },
  };
}

/**
 * Plays a live stream over WHEP (`POST /whep/<manifestID>`) into `video`.
 * @param headers request headers (the console's admin token, when it has one)
 * @returns the session
 * @throws EndpointMissing when the gateway has no WHEP; ApiError (e.g. 503 when the viewer limit is reached)
 */
export async function playWhep(manifestID, video, headers) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  });
  try {
    const location = await negotiate(pc, `/whep/${encodeURIComponent(manifestID)}`, headers, 'WHEP playback');
    return session(pc, location, headers);
  } catch (err) {
    pc.close();
    throw err;
  }
}

/** Puts H.264 first in the video transceiver's codec list (the gateway passes it through; others are transcoded). */
function preferH264(transceiver) {
  const caps = typeof RTCRtpSender.getCapabilities === 'function' ? RTCRtpSender.getCapabilities('video') : null;
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264');
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== 'video/h264');
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rest]);
}

/**
 * Publishes `media` (from getUserMedia) over WHIP: `POST /whip` with the stream key as
 * `Authorization: Bearer <streamKey>` (as OBS sends it).
 * @param onState called with the peer connection's state ('connecting', 'connected', 'failed', …)
 * @returns the session
 * @throws EndpointMissing when the gateway has no WHIP; ApiError (401/403 for a wrong key)
 */
export async function publishWhip(streamKey, media, onState) {
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video') preferH264(t);
  }
  pc.addEventListener('connectionstatechange', () => onState(pc.connectionState));
  const headers = { Authorization: `Bearer ${streamKey}` };
  try {
    // The key goes in the Authorization header only: never in a URL (logs, proxies, history).
    const location = await negotiate(pc, '/whip', headers, 'WHIP publishing');
    return session(pc, location, headers);
  } catch (err) {
    pc.close();
    throw err;
  }
}
