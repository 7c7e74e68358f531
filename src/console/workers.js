/**
 * Workers: the AI workers this gateway routes to, with health, capacity and load, and the
 * deployment's gateways and transcoders (control API: GET /api/cluster).
 */
import { html } from './html.js';
import { usePoll } from './poll.js';
import { duration, errorText, when } from './format.js';

const POLL_MS = 3000;

function AiWorkers({ workers }) {
  if (workers.length === 0) return html`<p class="muted">No AI workers registered. Add one in the configuration (ai.workers) or with POST /api/workers.</p>`;
  return html`<div class="table-wrap"><table>
    <caption>AI workers</caption>
    <thead><tr><th scope="col">Worker</th><th scope="col">Health</th><th scope="col">Capacity</th><th scope="col">In flight</th><th scope="col">Pipelines</th></tr></thead>
    <tbody>${workers.map((w) => html`<tr key=${w.id} data-worker-id=${w.id}>
      <th scope="row"><span class="mono">${w.url}</span></th>
      <td><span class=${`state ${w.healthy ? 'state-live' : 'state-retrying'}`}>${w.healthy ? 'healthy' : 'unhealthy'}</span> ${w.status}
        ${w.suspendedUntil ? html`<br /><span class="note">suspended until ${when(w.suspendedUntil)}</span>` : ''}</td>
      <td>${w.capacity}</td>
      <td><meter min="0" max=${Math.max(1, w.capacity)} value=${w.inFlight} aria-label=${`Load of ${w.url}`}></meter> ${w.inFlight}</td>
      <td><ul class="plain">${w.pipelines.map((p) => html`<li key=${`${p.pipeline}/${p.model_id}`}>${p.pipeline} <span class="mono">${p.model_id}</span>${' '}${p.warm ? html`<span class="tag">warm</span> ` : ''}${p.inFlight ?? 0}/${p.capacity}</li>`)}</ul></td>
    </tr>`)}</tbody>
  </table></div>`;
}

export function WorkersPage({ api }) {
  const cluster = usePoll(() => api.get('/api/cluster'), POLL_MS, []);
  const c = cluster.data;
  return html`<section aria-labelledby="page-h">
    <div class="page-head"><h2 id="page-h">Workers</h2></div>
    ${cluster.error ? html`<p role="alert" class="error">${errorText(cluster.error)}</p>` : ''}
    ${c ? html`
      <${AiWorkers} workers=${c.aiWorkers} />
      <div class="table-wrap"><table>
        <caption>Gateways</caption>
        <thead><tr><th scope="col">Gateway</th><th scope="col">Address</th><th scope="col">Streams</th><th scope="col">Up</th><th scope="col">Version</th></tr></thead>
        <tbody>${c.gateways.map((g) => html`<tr key=${g.id}><th scope="row" class="mono">${g.id}</th><td class="mono">${g.address}</td>
          <td>${g.streams}</td><td>${duration(g.uptimeS * 1000)}</td><td>${g.version}</td></tr>`)}</tbody>
      </table></div>
      <div class="table-wrap"><table>
        <caption>Transcoders</caption>
        <thead><tr><th scope="col">Transcoder</th><th scope="col">Slots in use</th><th scope="col">Live sessions</th><th scope="col">Jobs</th><th scope="col">Host load</th></tr></thead>
        <tbody>${c.transcoders.map((t) => html`<tr key=${t.id}><th scope="row" class="mono">${t.id}${t.embedded ? ' (embedded)' : ''}</th>
          <td>${t.inFlight}/${t.slots}</td><td>${t.liveSessions}</td><td>${t.jobs}</td><td>${t.load.toFixed(2)}</td></tr>`)}</tbody>
      </table></div>
      <p class="muted">As of ${when(c.generatedAt)}.</p>` : ''}
  </section>`;
}
