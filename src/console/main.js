/**
 * The console's entry point: sign-in, navigation (the URL's hash names the page; nothing
 * secret ever goes in the URL) and the pages. The admin token is held by the Api object in
 * this module's component state only: never in the URL, cookies or web storage, so a reload
 * or "Sign out" forgets it.
 */
import { html, render, useEffect, useState } from './html.js';
import { Api, probeAccess } from './api.js';
import { errorText } from './format.js';
import { StreamsPage } from './streams.js';
import { RecordingsPage } from './recordings.js';
import { WorkersPage } from './workers.js';
import { AccountsPage } from './accounts.js';
import { PublishPage } from './publish.js';

const PAGES = [
  { id: 'streams', title: 'Live streams', Page: StreamsPage },
  { id: 'recordings', title: 'Recordings', Page: RecordingsPage },
  { id: 'workers', title: 'Workers', Page: WorkersPage },
  { id: 'accounts', title: 'Accounts', Page: AccountsPage },
  { id: 'publish', title: 'Publish', Page: PublishPage },
];

function pageFromHash() {
  const id = window.location.hash.replace(/^#\/?/, '');
  return PAGES.find((p) => p.id === id) ?? PAGES[0];
}

function Login({ onSignedIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const api = new Api(token);
    try {
      await api.get('/api/streams?limit=1');
      setToken('');
      onSignedIn(api);
    } catch (err) {
      setError(err.status === 401 ? 'That admin token was not accepted.' : errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <h1>mediagate console</h1>
    <form class="stack-form card" onSubmit=${submit} aria-describedby="login-help">
      <label for="admin-token">Admin token</label>
      <input id="admin-token" name="token" type="password" required autocomplete="off" autofocus
        value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      <p id="login-help" class="muted">The gateway's http.adminToken (MEDIAGATE_HTTP_ADMIN_TOKEN). It is kept in this page's memory only: reloading the page signs you out.</p>
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<p role="alert" class="error">${error}</p>` : ''}
    </form>
  </main>`;
}

/** The skip link moves focus to the page's content (its hash would otherwise name a page). */
function skipToMain(e) {
  e.preventDefault();
  document.getElementById('main')?.focus();
}

function App() {
  const [api, setApi] = useState(undefined);
  const [access, setAccess] = useState('probing');
  const [page, setPage] = useState(pageFromHash);
  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    probeAccess().then((a) => {
      setAccess(a);
      if (a === 'open') setApi(new Api(''));
    }).catch((err) => setAccess(`error: ${errorText(err)}`));
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => { document.title = `${page.title} · mediagate console`; }, [page]);
  if (access === 'probing') return html`<main class="login"><p role="status">Connecting to the gateway…</p></main>`;
  if (access === 'disabled') {
    return html`<main class="login"><h1>mediagate console</h1><p role="alert" class="error">The admin APIs are off: this gateway binds a public
      address and has no admin token. Set http.adminToken (MEDIAGATE_HTTP_ADMIN_TOKEN) and restart it.</p></main>`;
  }
  if (access.startsWith('error')) return html`<main class="login"><p role="alert" class="error">${access}</p></main>`;
  if (!api) return html`<${Login} onSignedIn=${setApi} />`;
  const { Page } = page;
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${skipToMain}>Skip to content</a>
    <header class="top">
      <h1>mediagate</h1>
      <nav aria-label="Console pages"><ul>
        ${PAGES.map((p) => html`<li key=${p.id}><a href=${`#/${p.id}`} aria-current=${p === page ? 'page' : undefined}>${p.title}</a></li>`)}
      </ul></nav>
      ${api.hasToken
        ? html`<button type="button" class="sign-out" onClick=${() => setApi(undefined)}>Sign out</button>`
        : html`<span class="muted" title="The gateway binds loopback and has no admin token">open on loopback</span>`}
    </header>
    <main id="main" tabindex="-1"><${Page} key=${page.id} api=${api} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('console'));
