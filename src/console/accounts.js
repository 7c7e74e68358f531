/**
 * Accounts: balances, and for the chosen account its usage in a range (totals by stream and
 * by pipeline/model) with a chart of its charges per hour or per day drawn from its ledger
 * (payments API: GET /api/accounts, /api/accounts/<id>/usage, /api/accounts/<id>/ledger).
 * Credits are decimal strings that may pass 2^53: sums use BigInt; only bar heights are
 * approximated as numbers.
 */
import { html, useState } from './html.js';
import { usePoll } from './poll.js';
import { credits, errorText, when } from './format.js';

const POLL_MS = 5000;
/** Pages of 1000 ledger entries read for the chart at most (the chart says when it was cut). */
const MAX_LEDGER_PAGES = 10;

const RANGES = {
  day: { label: 'Last 24 hours, per hour', bucketMs: 3600_000, buckets: 24 },
  fortnight: { label: 'Last 14 days, per day', bucketMs: 86400_000, buckets: 14 },
};

async function loadUsage(api, id, rangeName) {
  const range = RANGES[rangeName];
  const now = Date.now();
  const end = Math.ceil(now / range.bucketMs) * range.bucketMs;
  const start = end - range.buckets * range.bucketMs;
  const q = `from=${encodeURIComponent(new Date(start).toISOString())}&to=${encodeURIComponent(new Date(end).toISOString())}`;
  const base = `/api/accounts/${encodeURIComponent(id)}`;
  const usage = await api.get(`${base}/usage?${q}`);
  const sums = Array.from({ length: range.buckets }, () => 0n);
  let cursor;
  let pages = 0;
  do {
    const page = await api.get(`${base}/ledger?${q}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const e of page.entries) {
      if (e.kind === 'topup') continue;
      const i = Math.floor((Date.parse(e.createdAt) - start) / range.bucketMs);
      if (i >= 0 && i < range.buckets) sums[i] += BigInt(e.amount);
    }
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor && pages < MAX_LEDGER_PAGES);
  return { usage, start, bucketMs: range.bucketMs, sums, cut: Boolean(cursor) };
}

function bucketLabel(startMs, bucketMs) {
  const d = new Date(startMs);
  return bucketMs < 86400_000
    ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

/** Bars of credits charged per bucket, with the same figures as a table for screen readers. */
function UsageChart({ chart, label }) {
  const max = chart.sums.reduce((m, v) => (v > m ? v : m), 0n);
  const total = chart.sums.reduce((a, v) => a + v, 0n);
  const w = 600;
  const h = 160;
  const barW = w / chart.sums.length;
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${w} ${h + 20}`} role="img" aria-label=${`${label}: ${credits(total.toString())} credits charged in all`}>
      <line x1="0" y1=${h} x2=${w} y2=${h} class="axis" />
      ${chart.sums.map((v, i) => {
        const bh = max === 0n ? 0 : Math.max(v > 0n ? 2 : 0, Number((v * 1000n) / max) / 1000 * (h - 10));
        const at = chart.start + i * chart.bucketMs;
        return html`<rect key=${i} class="bar" x=${i * barW + 2} y=${h - bh} width=${Math.max(1, barW - 4)} height=${bh}>
          <title>${bucketLabel(at, chart.bucketMs)}: ${credits(v.toString())} credits</title></rect>`;
      })}
      <text x="0" y=${h + 16} class="tick">${bucketLabel(chart.start, chart.bucketMs)}</text>
      <text x=${w} y=${h + 16} class="tick" text-anchor="end">now</text>
    </svg>
    <figcaption>${label}: ${credits(total.toString())} credits (largest ${credits(max.toString())})${chart.cut ? ' — the ledger has more entries than the chart read' : ''}</figcaption>
    <details><summary>Figures</summary><div class="table-wrap"><table>
      <thead><tr><th scope="col">From</th><th scope="col">Credits</th></tr></thead>
      <tbody>${chart.sums.map((v, i) => html`<tr key=${i}><td>${bucketLabel(chart.start + i * chart.bucketMs, chart.bucketMs)}</td><td>${credits(v.toString())}</td></tr>`)}</tbody>
    </table></div></details>
  </figure>`;
}

function AccountUsage({ api, account }) {
  const [range, setRange] = useState('day');
  const data = usePoll(() => loadUsage(api, account.id, range), POLL_MS, [account.id, range]);
  const u = data.data?.usage;
  return html`<section class="card" aria-labelledby="usage-h">
    <h3 id="usage-h">${account.name} <span class="muted mono">${account.id}</span></h3>
    <p>Balance: <strong class="balance">${credits(account.balance)}</strong> credits</p>
    <label for="usage-range">Range</label>
    <select id="usage-range" value=${range} onChange=${(e) => setRange(e.currentTarget.value)}>
      ${Object.entries(RANGES).map(([k, r]) => html`<option key=${k} value=${k}>${r.label}</option>`)}
    </select>
    ${data.error ? html`<p role="alert" class="error">${errorText(data.error)}</p>` : ''}
    ${data.data ? html`<${UsageChart} chart=${data.data} label=${`Charges of ${account.name}, ${RANGES[range].label.toLowerCase()}`} />` : ''}
    ${u ? html`<div class="table-wrap"><table>
      <caption>By stream (${u.byStream.length})</caption>
      <thead><tr><th scope="col">Stream</th><th scope="col">Units</th><th scope="col">Credits</th><th scope="col">Entries</th></tr></thead>
      <tbody>${u.byStream.map((s) => html`<tr key=${s.manifestID}><th scope="row">${s.manifestID}</th><td>${credits(s.units)}</td><td>${credits(s.amount)}</td><td>${s.entries}</td></tr>`)}</tbody>
    </table></div>
    <div class="table-wrap"><table>
      <caption>By AI pipeline and model (${u.byModel.length})</caption>
      <thead><tr><th scope="col">Pipeline</th><th scope="col">Model</th><th scope="col">Units</th><th scope="col">Credits</th><th scope="col">Entries</th></tr></thead>
      <tbody>${u.byModel.map((m) => html`<tr key=${`${m.pipeline}/${m.modelID}`}><th scope="row">${m.pipeline}</th><td class="mono">${m.modelID}</td><td>${credits(m.units)}</td><td>${credits(m.amount)}</td><td>${m.entries}</td></tr>`)}</tbody>
    </table></div>
    <p>Total: ${credits(u.total.amount)} credits in ${u.total.entries} charges, ${when(u.from)} to ${when(u.to)}.</p>` : ''}
  </section>`;
}

export function AccountsPage({ api }) {
  const accounts = usePoll(() => api.get('/api/accounts'), POLL_MS, []);
  const [chosen, setChosen] = useState(undefined);
  const list = accounts.data?.accounts ?? [];
  const account = list.find((a) => a.id === chosen) ?? list[0];
  return html`<section aria-labelledby="page-h">
    <div class="page-head"><h2 id="page-h">Accounts</h2></div>
    ${accounts.error ? html`<p role="alert" class="error">${errorText(accounts.error)}</p>` : ''}
    ${!accounts.loading && list.length === 0 ? html`<p class="muted">No accounts. Create one with POST /api/accounts.</p>` : ''}
    ${list.length ? html`<div class="table-wrap"><table class="accounts">
      <caption>Accounts and balances</caption>
      <thead><tr><th scope="col">Account</th><th scope="col">ID</th><th scope="col">Balance (credits)</th><th scope="col">Created</th><th scope="col">Usage</th></tr></thead>
      <tbody>${list.map((a) => html`<tr key=${a.id} data-account-id=${a.id} aria-current=${a === account ? 'true' : undefined}>
        <th scope="row">${a.name}</th><td class="mono">${a.id}</td><td class="num">${credits(a.balance)}</td><td>${when(a.createdAt)}</td>
        <td><button type="button" onClick=${() => setChosen(a.id)} aria-pressed=${a === account} aria-label=${`Show usage of ${a.name}`}>Usage</button></td>
      </tr>`)}</tbody>
    </table></div>` : ''}
    ${account ? html`<${AccountUsage} key=${account.id} api=${api} account=${account} />` : ''}
  </section>`;
}
