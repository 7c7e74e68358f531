/**
 * Publish: sends this device's camera and microphone to the gateway over WHIP
 * (`POST /whip` with the key as `Authorization: Bearer`), where it enters the same pipeline as an RTMP publish
 * (ladder, HLS, recording, outputs). The stream key stays in this page's memory.
 */
import { html, useEffect, useRef, useState } from './html.js';
import { EndpointMissing, publishWhip } from './webrtc.js';
import { errorText } from './format.js';

export function PublishPage() {
  const preview = useRef(null);
  const media = useRef(undefined);
  const session = useRef(undefined);
  const [key, setKey] = useState('');
  const [audio, setAudio] = useState(true);
  const [state, setState] = useState('idle');
  const [error, setError] = useState('');
  const stopAll = () => {
    session.current?.close();
    session.current = undefined;
    media.current?.getTracks().forEach((t) => t.stop());
    media.current = undefined;
    if (preview.current) preview.current.srcObject = null;
  };
  useEffect(() => stopAll, []);
  const start = async (e) => {
    e.preventDefault();
    setError('');
    if (!navigator.mediaDevices?.getUserMedia) {
      setError('this page needs a secure context (https, or http on localhost/127.0.0.1) to use the camera');
      return;
    }
    try {
      setState('camera');
      media.current = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio });
      preview.current.srcObject = media.current;
      setState('connecting');
      session.current = await publishWhip(key.trim(), media.current, (s) => {
        setState(s);
        // The gateway ended it (a kick, a timeout): release the camera too.
        if (s === 'failed' || s === 'closed') stopAll();
      });
      if (session.current.pc.connectionState === 'connected') setState('connected');
    } catch (err) {
      stopAll();
      setState('idle');
      setError(err instanceof EndpointMissing ? `${err.message}: publish over RTMP instead` : errorText(err));
    }
  };
  const stop = () => {
    stopAll();
    setState('idle');
  };
  const busy = state !== 'idle' && state !== 'failed' && state !== 'closed' && state !== 'disconnected';
  return html`<section aria-labelledby="page-h">
    <div class="page-head"><h2 id="page-h">Publish</h2></div>
    <p>Publish this device's camera over WHIP. The stream gets the same ladder, HLS playback, recording and outputs as an RTMP publish.</p>
    <form class="stack-form" onSubmit=${start}>
      <label for="publish-key">Stream key</label>
      <input id="publish-key" type="password" required value=${key} onInput=${(e) => setKey(e.currentTarget.value)} autocomplete="off" disabled=${busy} />
      <label class="check"><input type="checkbox" checked=${audio} onChange=${(e) => setAudio(e.currentTarget.checked)} disabled=${busy} /> Microphone</label>
      <div class="actions">
        <button type="submit" disabled=${busy}>Start publishing</button>
        <button type="button" onClick=${stop} disabled=${!busy}>Stop</button>
      </div>
    </form>
    <p>State: <strong class="publish-state" role="status">${state}</strong></p>
    ${error ? html`<p role="alert" class="error">${error}</p>` : ''}
    <figure class="player"><video ref=${preview} muted playsinline autoplay aria-label="Camera preview"></video></figure>
  </section>`;
}
