/**
 * Live streams: each live stream with its thumbnail, a preview (WHEP when the gateway serves
 * it, else HLS; or HLS by choice), its renditions' figures, a kick button, and its restream outputs
 * (control API: GET /api/streams, DELETE /api/streams/<id>, /api/streams/<id>/outputs).
 */
import { html, useState } from './html.js';
import { usePoll } from './poll.js';
import { Player } from './player.js';
import { bitrate, duration, errorText, when } from './format.js';

const POLL_MS = 2000;

function Renditions({ stream }) {
  return html`<div class="table-wrap"><table>
    <caption>Renditions of ${stream.manifestID}</caption>
    <thead><tr><th scope="col">Rendition</th><th scope="col">Size</th><th scope="col">Bitrate</th><th scope="col">Segments</th><th scope="col">Skipped</th><th scope="col">Playlist</th></tr></thead>
    <tbody>${stream.renditions.map((r) => html`<tr key=${r.name}>
      <th scope="row">${r.name}</th><td>${r.width ? `${r.width}×${r.height}` : '–'}</td><td>${bitrate(r.bitrateBps)}</td>
      <td>${r.segments}</td><td class=${r.failedSegments ? 'bad' : ''}>${r.failedSegments}</td>
      <td><a href=${r.playlistUrl}>m3u8</a></td></tr>`)}</tbody>
  </table></div>`;
}

function Outputs({ api, stream }) {
  const base = `/api/streams/${encodeURIComponent(stream.manifestID)}/outputs`;
  const outputs = usePoll(() => api.get(base), POLL_MS, [stream.manifestID]);
  const [url, setUrl] = useState('');
  const [rendition, setRendition] = useState('source');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const act = async (fn) => {
    setBusy(true);
    setError('');
    try {
      await fn();
      await outputs.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const add = (e) => {
    e.preventDefault();
    void act(async () => {
      await api.post(base, { url: url.trim(), rendition });
      setUrl('');
    });
  };
  const id = `out-${stream.manifestID}`;
  const list = outputs.data?.outputs ?? [];
  return html`<section class="outputs" aria-labelledby=${`${id}-h`}>
    <h4 id=${`${id}-h`}>Outputs</h4>
    ${list.length === 0 ? html`<p class="muted">No restream outputs.</p>` : html`<ul class="output-list">
      ${list.map((o) => html`<li key=${o.id} class="output" data-output-id=${o.id}>
        <span class="mono">${o.url}</span> <span class="tag">${o.rendition}</span>
        <span class=${`state state-${o.state}`}>${o.state}</span>${o.reason ? html` <span class="note">${o.reason}</span>` : ''}
        <button type="button" disabled=${busy} onClick=${() => act(() => api.delete(`${base}/${encodeURIComponent(o.id)}`))}
          aria-label=${`Remove output ${o.url}`}>Remove</button>
      </li>`)}</ul>`}
    <form class="inline-form" onSubmit=${add}>
      <label for=${`${id}-url`}>Target URL</label>
      <input id=${`${id}-url`} name="url" type="text" inputmode="url" required placeholder="rtmp://host/app/key"
        value=${url} onInput=${(e) => setUrl(e.currentTarget.value)} autocomplete="off" spellcheck="false" />
      <label for=${`${id}-rendition`}>Rendition</label>
      <select id=${`${id}-rendition`} value=${rendition} onChange=${(e) => setRendition(e.currentTarget.value)}>
        ${stream.renditions.map((r) => html`<option key=${r.name} value=${r.name}>${r.name}</option>`)}
      </select>
      <button type="submit" disabled=${busy}>Add output</button>
    </form>
    ${error || outputs.error ? html`<p role="alert" class="error">${error || errorText(outputs.error)}</p>` : ''}
  </section>`;
}

function Kick({ api, stream, onKicked }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState('');
  const kick = async () => {
    try {
      await api.delete(`/api/streams/${encodeURIComponent(stream.manifestID)}`);
      setConfirming(false);
      onKicked();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return html`<div class="kick">
    ${confirming
      ? html`<span>Disconnect the publisher of ${stream.manifestID}?</span>
          <button type="button" class="danger" onClick=${kick}>Confirm kick</button>
          <button type="button" onClick=${() => setConfirming(false)}>Cancel</button>`
      : html`<button type="button" class="danger" onClick=${() => setConfirming(true)} aria-label=${`Kick ${stream.manifestID}`}>Kick</button>`}
    ${error ? html`<p role="alert" class="error">${error}</p>` : ''}
  </div>`;
}

function StreamCard({ api, stream, onChanged }) {
  const [preview, setPreview] = useState(false);
  const [over, setOver] = useState('auto');
  const thumbKey = Math.floor(stream.segments / 3);
  return html`<article class="card stream" data-manifest-id=${stream.manifestID} aria-labelledby=${`s-${stream.manifestID}`}>
    <header class="card-head">
      <img class="thumb" src=${`/stream/${encodeURIComponent(stream.manifestID)}/thumbnail.jpg?k=${thumbKey}`}
        alt=${`Thumbnail of ${stream.manifestID}`} width="160" height="90" loading="lazy"
        onError=${(e) => { e.currentTarget.hidden = true; }} onLoad=${(e) => { e.currentTarget.hidden = false; }} />
      <div>
        <h3 id=${`s-${stream.manifestID}`}>${stream.manifestID}</h3>
        <dl class="facts">
          <dt>State</dt><dd class=${`state state-${stream.state}`}>${stream.state}</dd>
          <dt>Protocol</dt><dd>${stream.protocol}</dd>
          <dt>Started</dt><dd>${when(stream.startedAt)}</dd>
          <dt>Ingest</dt><dd>${bitrate(stream.ingestBitrateBps)}</dd>
          <dt>Segments</dt><dd>${stream.segments}</dd>
          <dt>Last segment</dt><dd>${stream.lastSegmentAgeMs === undefined ? '–' : `${duration(stream.lastSegmentAgeMs)} ago`}</dd>
        </dl>
      </div>
    </header>
    ${stream.warnings.length ? html`<ul class="warnings">${stream.warnings.map((w) => html`<li key=${w.code}><strong>${w.code}</strong>: ${w.msg}</li>`)}</ul>` : ''}
    <div class="actions">
      <button type="button" aria-expanded=${preview} onClick=${() => setPreview(!preview)}>${preview ? 'Hide preview' : 'Preview'}</button>
      <label for=${`over-${stream.manifestID}`}>Preview over</label>
      <select id=${`over-${stream.manifestID}`} value=${over} onChange=${(e) => setOver(e.currentTarget.value)}>
        <option value="auto">WHEP when served, else HLS</option><option value="hls">HLS</option>
      </select>
      <a href=${stream.playbackUrl}>HLS playlist</a>
      ${stream.state === 'live' ? html`<${Kick} api=${api} stream=${stream} onKicked=${onChanged} />` : ''}
    </div>
    ${preview ? html`<${Player} src=${stream.playbackUrl} manifestID=${stream.manifestID} whep=${over === 'auto'} headers=${api.headers()}
      label=${`Live preview of ${stream.manifestID}`} />` : ''}
    <${Renditions} stream=${stream} />
    ${stream.state === 'live' ? html`<${Outputs} api=${api} stream=${stream} />` : ''}
  </article>`;
}

export function StreamsPage({ api }) {
  const [state, setState] = useState('live');
  const streams = usePoll(() => api.get(`/api/streams?state=${state}`), POLL_MS, [state]);
  const list = streams.data?.streams ?? [];
  return html`<section aria-labelledby="page-h">
    <div class="page-head">
      <h2 id="page-h">Live streams</h2>
      <label for="stream-state">Show</label>
      <select id="stream-state" value=${state} onChange=${(e) => setState(e.currentTarget.value)}>
        <option value="live">live</option><option value="ended">recently ended</option><option value="all">all</option>
      </select>
    </div>
    ${streams.error ? html`<p role="alert" class="error">${errorText(streams.error)}</p>` : ''}
    ${!streams.loading && list.length === 0 ? html`<p class="muted">No ${state === 'all' ? '' : state} streams. Publish with OBS or ffmpeg to ${'rtmp://<host>:1935/live/<stream key>'}, or from the Publish page.</p>` : ''}
    <div class="cards">${list.map((s) => html`<${StreamCard} key=${s.manifestID} api=${api} stream=${s} onChanged=${streams.reload} />`)}</div>
  </section>`;
}
