/**
 * A WHEP player for browser tests and the WHEP bench: {@link installWhepPlayer} adds
 * `window.whepPlayer` to a Chromium page (loaded from the gateway's own origin, e.g.
 * `/healthz`, so its requests are same-origin), which plays any number of WHEP sessions with
 * RTCPeerConnection and reads, per session, `getStats` and the wall-clock time burned into the
 * published picture ({@link paintClock}), for a glass-to-glass latency.
 *
 * The clock code: {@link CLOCK_BITS} bits of `Date.now()` (ms) as white (1) / black (0)
 * squares of {@link CLOCK_CELL_PX} px, {@link CLOCK_COLUMNS} per row from the top-left corner,
 * least significant bit first. The page reads the centre of each square.
 */
import type { Page } from 'playwright-core';
import { SEND_ONLY_OFFER } from './whip-page.ts';

export const CLOCK_BITS = 44;
export const CLOCK_COLUMNS = 22;
export const CLOCK_CELL_PX = 24;

/**
 * Paints `ms` into the luma plane of a yuv420p frame of `width` px (rows of {@link CLOCK_COLUMNS}
 * squares), leaving the rest of it as it is.
 */
export function paintClock(yPlane: Buffer, width: number, ms: number): void {
  let value = ms;
  for (let bit = 0; bit < CLOCK_BITS; bit++) {
    const on = value % 2 === 1;
    value = Math.floor(value / 2);
    const x0 = (bit % CLOCK_COLUMNS) * CLOCK_CELL_PX;
    const y0 = Math.floor(bit / CLOCK_COLUMNS) * CLOCK_CELL_PX;
    for (let y = y0; y < y0 + CLOCK_CELL_PX; y++) yPlane.fill(on ? 235 : 16, y * width + x0, y * width + x0 + CLOCK_CELL_PX);
  }
}

/** What a `play` returns: `201` with the session's index and Location, or the refusal. */
export type PlayResult =
  | { status: 201; index: number; location: string }
  | { status: number; body: string; retryAfter: string | null };

export interface ViewerStats {
  framesDecoded: number;
  framesDropped: number;
  framesReceived: number;
  packetsLost: number;
  audioPackets: number;
  /** Glass-to-glass latencies read so far, ms (clock read from the picture vs. the page's Date.now()). */
  latenciesMs: number[];
}

/**
 * The page script (plain JavaScript in a string: a function compiled by the test runner could
 * carry helpers the page does not have).
 */
const PLAYER_SCRIPT = `(() => {
  const bits = ${CLOCK_BITS}, columns = ${CLOCK_COLUMNS}, cell = ${CLOCK_CELL_PX};
  const viewers = [];
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    const timer = setTimeout(resolve, 2000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } });
  });
  window.whepPlayer = {
    async play(url) {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 160;
      document.body.appendChild(video);
      pc.ontrack = (e) => { if (e.track.kind === 'video') video.srcObject = new MediaStream([e.track]); };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      if (res.status !== 201) {
        pc.close();
        video.remove();
        return { status: res.status, body: await res.text(), retryAfter: res.headers.get('Retry-After') };
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      viewers.push({ pc, video, location: res.headers.get('Location') || '', latencies: [], reading: false });
      return { status: 201, index: viewers.length - 1, location: res.headers.get('Location') || '' };
    },
    readClock(index, sourceWidth) {
      const v = viewers[index];
      if (v.reading) return;
      v.reading = true;
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const onFrame = () => {
        if (!v.reading) return;
        const now = Date.now();
        const w = v.video.videoWidth, h = v.video.videoHeight;
        if (w > 0 && h > 0) {
          // Drawn at the published size, whatever size the stream arrives in (a sender may scale down).
          canvas.width = sourceWidth; canvas.height = Math.round((h * sourceWidth) / w);
          ctx.drawImage(v.video, 0, 0, canvas.width, canvas.height);
          const img = ctx.getImageData(0, 0, columns * cell, Math.ceil(bits / columns) * cell).data;
          let ms = 0;
          for (let bit = bits - 1; bit >= 0; bit--) {
            const x = (bit % columns) * cell + cell / 2;
            const y = Math.floor(bit / columns) * cell + cell / 2;
            ms = ms * 2 + (img[(y * columns * cell + x) * 4] > 128 ? 1 : 0);
          }
          // A misread (a frame in transition) is far from now: only plausible values count.
          if (Math.abs(now - ms) < 60000) v.latencies.push(now - ms);
        }
        v.video.requestVideoFrameCallback(onFrame);
      };
      v.video.requestVideoFrameCallback(onFrame);
    },
    async stats(index) {
      const v = viewers[index];
      const out = { framesDecoded: 0, framesDropped: 0, framesReceived: 0, packetsLost: 0, audioPackets: 0, latenciesMs: v.latencies.slice() };
      (await v.pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          out.framesDecoded = s.framesDecoded || 0;
          out.framesDropped = s.framesDropped || 0;
          out.framesReceived = s.framesReceived || 0;
          out.packetsLost = s.packetsLost || 0;
        } else if (s.kind === 'audio') {
          out.audioPackets = s.packetsReceived || 0;
        }
      });
      return out;
    },
    async stop(index) {
      const v = viewers[index];
      v.reading = false;
      const status = (await fetch(v.location, { method: 'DELETE' })).status;
      v.pc.close();
      v.video.remove();
      return status;
    },
  };
})()`;

/** Adds `window.whepPlayer` to the page. */
export async function installWhepPlayer(page: Page): Promise<void> {
  await page.evaluate(PLAYER_SCRIPT);
}

/** `whepPlayer.play(url)` in the page. */
export async function play(page: Page, url: string): Promise<PlayResult> {
  return await page.evaluate(`window.whepPlayer.play(${JSON.stringify(url)})`) as PlayResult;
}

/** Starts reading the burned-in clock of viewer `index`'s frames, published `sourceWidth` px wide. */
export async function readClock(page: Page, index: number, sourceWidth: number): Promise<void> {
  await page.evaluate(`window.whepPlayer.readClock(${index}, ${sourceWidth})`);
}

/**
 * Page code: a 640×360 canvas redrawn every 33 ms with the wall clock burned in as in
 * {@link paintClock}, published over WHIP to `path` with `Authorization: Bearer <key>`;
 * resolves to the WHIP answer's status once connected.
 */
export function whipClockPublisher(path: string, key: string): string {
  return `(async () => {
  const bits = ${CLOCK_BITS}, columns = ${CLOCK_COLUMNS}, cell = ${CLOCK_CELL_PX};
  const canvas = document.createElement('canvas');
  canvas.width = 640; canvas.height = 360;
  const ctx = canvas.getContext('2d');
  let n = 0;
  const draw = () => {
    const now = Date.now();
    ctx.fillStyle = 'rgb(' + (60 + (n++ % 60)) + ',90,90)';
    ctx.fillRect(0, 0, 640, 360);
    let value = now;
    for (let bit = 0; bit < bits; bit++) {
      ctx.fillStyle = value % 2 === 1 ? '#ebebeb' : '#101010';
      value = Math.floor(value / 2);
      ctx.fillRect((bit % columns) * cell, Math.floor(bit / columns) * cell, cell, cell);
    }
  };
  draw();
  window.clockTimer = setInterval(draw, 33);
  const stream = canvas.captureStream(30);
  ${SEND_ONLY_OFFER}
  const res = await fetch(${JSON.stringify(path)}, { method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + ${JSON.stringify(key)} }, body: pc.localDescription.sdp });
  if (res.status !== 201) return res.status;
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  window.whipPc = pc;
  window.whipCanvas = canvas;
  window.whipLocation = res.headers.get('Location');
  return res.status;
})()`;
}

export async function viewerStats(page: Page, index: number): Promise<ViewerStats> {
  return await page.evaluate(`window.whepPlayer.stats(${index})`) as ViewerStats;
}

/** Closes viewer `index` and DELETEs its session; the DELETE's status. */
export async function stopViewer(page: Page, index: number): Promise<number> {
  return await page.evaluate(`window.whepPlayer.stop(${index})`) as number;
}
