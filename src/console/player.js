/**
 * A video preview: WHEP first when asked (sub-second, when the gateway serves it), else HLS
 * through hls.js (or the browser's own HLS, as in Safari). The caption says which is playing
 * and why WHEP was not used.
 */
import { html, useEffect, useRef, useState } from './html.js';
import { EndpointMissing, playWhep } from './webrtc.js';
import { errorText } from './format.js';

/**
 * Attaches the HLS playlist `src` to `video`.
 * @returns a function that detaches it, or undefined when this browser cannot play HLS
 */
async function attachHls(video, src, onFatal) {
  const { default: Hls } = await import('hls.js');
  if (Hls.isSupported()) {
    // The transmuxer runs on the page's thread: a worker would need a blob: URL for its code.
    const hls = new Hls({ enableWorker: false });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else onFatal(`HLS: ${data.details}`);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    return () => hls.destroy();
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
    return () => { video.removeAttribute('src'); video.load(); };
  }
  return undefined;
}

/**
 * @param {object} props
 * @param {string} props.src HLS playlist URL
 * @param {string} [props.manifestID] the live stream, for WHEP
 * @param {boolean} [props.whep] try WHEP first
 * @param {object} [props.headers] request headers for WHEP (the admin token)
 * @param {string} props.label accessible name of the video
 */
export function Player({ src, manifestID, whep = false, headers = {}, label }) {
  const ref = useRef(null);
  const [mode, setMode] = useState('starting');
  const [note, setNote] = useState('');
  useEffect(() => {
    const video = ref.current;
    let cancelled = false;
    let stop = () => {};
    const startHls = async () => {
      const detach = await attachHls(video, src, (why) => setNote(why));
      if (cancelled) { detach?.(); return; }
      if (!detach) { setMode('none'); setNote('this browser cannot play HLS'); return; }
      stop = detach;
      setMode('HLS');
      video.play().catch(() => undefined);
    };
    (async () => {
      if (whep && manifestID) {
        try {
          const s = await playWhep(manifestID, video, headers);
          if (cancelled) { s.close(); return; }
          stop = () => { s.close(); video.srcObject = null; };
          setMode('WHEP');
          s.pc.addEventListener('connectionstatechange', () => {
            if (cancelled || s.pc.connectionState !== 'failed') return;
            stop();
            setNote('WHEP connection failed; playing HLS');
            void startHls();
          });
          video.play().catch(() => undefined);
          return;
        } catch (err) {
          if (cancelled) return;
          setNote(err instanceof EndpointMissing ? 'WHEP is not served by this gateway; playing HLS' : `WHEP unavailable (${errorText(err)}); playing HLS`);
        }
      }
      await startHls();
    })().catch((err) => setNote(errorText(err)));
    return () => { cancelled = true; stop(); };
  }, [src, manifestID, whep]);
  return html`<figure class="player">
    <video ref=${ref} controls muted playsinline autoplay aria-label=${label}></video>
    <figcaption><span class="player-mode" data-mode=${mode}>Preview: ${mode}</span>${note ? html` <span class="note">${note}</span>` : ''}</figcaption>
  </figure>`;
}
