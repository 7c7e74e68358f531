/**
 * Recordings: every recording of the streams the gateway lists (live and recently ended) and
 * of any manifest ID looked up by name, with play (HLS VOD through hls.js) and download (one
 * MP4 per rendition) (control API: GET /api/streams, GET /api/streams/<id>/recordings).
 */
import { html, useState } from './html.js';
import { usePoll } from './poll.js';
import { Player } from './player.js';
import { duration, errorText, when } from './format.js';

const POLL_MS = 5000;

async function loadRecordings(api, extra) {
  const { streams } = await api.get('/api/streams?state=all&limit=100');
  const ids = [...new Set([...extra, ...streams.map((s) => s.manifestID)])];
  const lists = await Promise.all(ids.map((id) => api.get(`/api/streams/${encodeURIComponent(id)}/recordings`)
    .catch(() => ({ manifestID: id, recordings: [] }))));
  return lists.flatMap((l) => l.recordings.map((r) => ({ ...r, manifestID: l.manifestID })))
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

export function RecordingsPage({ api }) {
  const [extra, setExtra] = useState([]);
  const [lookup, setLookup] = useState('');
  const [playing, setPlaying] = useState(undefined);
  const recordings = usePoll(() => loadRecordings(api, extra), POLL_MS, [extra.join(',')]);
  const list = recordings.data ?? [];
  const find = (e) => {
    e.preventDefault();
    const id = lookup.trim();
    if (id && !extra.includes(id)) setExtra([...extra, id]);
    setLookup('');
  };
  return html`<section aria-labelledby="page-h">
    <div class="page-head">
      <h2 id="page-h">Recordings</h2>
      <form class="inline-form" onSubmit=${find}>
        <label for="rec-lookup">Manifest ID</label>
        <input id="rec-lookup" type="text" pattern="[A-Za-z0-9_-]{1,64}" value=${lookup} onInput=${(e) => setLookup(e.currentTarget.value)} autocomplete="off" />
        <button type="submit">Look up</button>
      </form>
    </div>
    ${recordings.error ? html`<p role="alert" class="error">${errorText(recordings.error)}</p>` : ''}
    ${playing ? html`<div class="card">
      <h3>Playing ${playing.manifestID} / ${playing.session}</h3>
      <${Player} src=${playing.playbackUrl} label=${`Recording ${playing.session} of ${playing.manifestID}`} />
      <button type="button" onClick=${() => setPlaying(undefined)}>Close player</button>
    </div>` : ''}
    ${!recordings.loading && list.length === 0 ? html`<p class="muted">No recordings. A stream is recorded when recording.enabled is set, or its stream key or the auth webhook asks for it.</p>` : ''}
    ${list.length ? html`<div class="table-wrap"><table class="recordings">
      <caption>Recordings, newest first</caption>
      <thead><tr><th scope="col">Stream</th><th scope="col">Session</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Play</th><th scope="col">Download</th></tr></thead>
      <tbody>${list.map((r) => html`<tr key=${`${r.manifestID}/${r.session}`} data-session=${r.session}>
        <th scope="row">${r.manifestID}</th><td class="mono">${r.session}</td>
        <td><span class=${`state state-${r.state}`}>${r.state}</span></td><td>${when(r.startedAt)}</td><td>${duration(r.durationMs)}</td>
        <td>${r.state === 'ready' && r.playbackUrl
          ? html`<button type="button" onClick=${() => setPlaying(r)} aria-label=${`Play recording ${r.session} of ${r.manifestID}`}>Play</button>` : '–'}</td>
        <td>${(r.renditions ?? []).map((x) => html`<a key=${x.name} class="download" href=${x.mp4Url} download
          aria-label=${`Download ${x.name} of ${r.session} as MP4`}>${x.name}</a> `)}${r.renditions?.length ? '' : '–'}</td>
      </tr>`)}</tbody>
    </table></div>` : ''}
  </section>`;
}
