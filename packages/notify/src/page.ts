/**
 * The gateway's web page: each repository with its last revision and when it came, and a live feed (SSE, the
 * gateway's /api/v1/notifications/feed). Plain HTML and script, no build step; URLs are relative, so it works
 * behind a proxy that moves the gateway under a path.
 *
 * With subscribe tokens, the page takes one from its URL (`#token=`, which never leaves the browser, or `?token=`),
 * keeps it in the tab's sessionStorage and takes it out of the address bar (and so out of bookmarks and history), or
 * asks for it in a field when the gateway answers 401. fetch sends it as a bearer token; EventSource cannot set
 * headers, so the feed's URL carries it as `?token=`.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>msgnotify gateway</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; min-width: 40rem; }
  th, td { text-align: left; padding: .3rem .8rem; border-bottom: 1px solid #ddd; }
  td.revision { font-variant-numeric: tabular-nums; }
  tr.fresh { background: #fff4c2; transition: background 2s; }
  #state { font-size: .9rem; color: #666; }
  #feed { list-style: none; padding: 0; font-family: monospace; }
</style>
</head>
<body>
<h1>Repositories</h1>
<p id="state">connecting...</p>
<form id="token-form" hidden>
  <label>subscribe token <input id="token" type="password" autocomplete="off"></label>
  <button type="submit">connect</button>
</form>
<table>
  <thead><tr><th>repository</th><th>revision</th><th>published</th><th>received</th></tr></thead>
  <tbody id="repositories"></tbody>
</table>
<h2>Live feed</h2>
<ul id="feed"></ul>
<script>
(() => {
  const rows = new Map();
  const tbody = document.getElementById('repositories');
  const state = document.getElementById('state');
  const feed = document.getElementById('feed');
  function show(s, fresh) {
    let row = rows.get(s.repository);
    if (!row) {
      row = document.createElement('tr');
      row.dataset.repository = s.repository;
      for (const c of ['name', 'revision', 'timestamp', 'received']) {
        const td = document.createElement('td');
        td.className = c;
        row.appendChild(td);
      }
      row.children[0].textContent = s.repository;
      const names = [...rows.keys(), s.repository].sort();
      rows.set(s.repository, row);
      const next = rows.get(names[names.indexOf(s.repository) + 1]);
      tbody.insertBefore(row, next || null);
    }
    if (Number(row.children[1].textContent || -1) > s.revision) return;
    row.children[1].textContent = String(s.revision);
    row.children[2].textContent = s.timestamp;
    row.children[3].textContent = s.receivedAt;
    if (fresh) {
      row.className = 'fresh';
      setTimeout(() => { row.className = ''; }, 2000);
      const li = document.createElement('li');
      li.textContent = s.receivedAt + '  ' + s.repository + '  revision ' + s.revision;
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 50) feed.removeChild(feed.lastChild);
    }
  }
  const form = document.getElementById('token-form');
  const field = document.getElementById('token');
  const KEY = 'msgnotify-token';
  const given = new URLSearchParams(location.hash.slice(1)).get('token') || new URLSearchParams(location.search).get('token');
  if (given) {
    sessionStorage.setItem(KEY, given);
    const clean = new URL(location.href);
    clean.searchParams.delete('token');
    clean.hash = '';
    history.replaceState(null, '', clean.pathname + clean.search);
  }
  let es = null;
  async function load() {
    const token = sessionStorage.getItem(KEY);
    const r = await fetch('api/v1/repositories', { cache: 'no-store', headers: token ? { Authorization: 'Bearer ' + token } : {} });
    if (r.status === 401) return false;
    if (!r.ok) throw new Error('HTTP ' + r.status);
    for (const s of (await r.json()).repositories) show(s, false);
    return true;
  }
  function askToken(wrong) {
    if (es) es.close();
    es = null;
    state.textContent = wrong ? 'the token was refused' : 'a token is required';
    form.hidden = false;
    field.focus();
  }
  async function connect() {
    // A probe first: an EventSource refused with 401 only says "error", and does not retry.
    if (!(await load())) return askToken(sessionStorage.getItem(KEY) !== null);
    form.hidden = true;
    const token = sessionStorage.getItem(KEY);
    es = new EventSource('api/v1/notifications/feed' + (token ? '?token=' + encodeURIComponent(token) : ''));
    es.addEventListener('activity', (e) => show(JSON.parse(e.data), true));
    // Loaded again once the feed is open, so nothing published in between is missed; after a reconnection, again.
    es.onopen = () => {
      load().then((ok) => { if (ok) state.textContent = 'live'; else askToken(true); })
        .catch(() => { state.textContent = 'cannot load the repositories'; });
    };
    es.onerror = () => {
      state.textContent = 'reconnecting...';
      // Closed for good (a refusal): find out why, or try again later.
      if (es && es.readyState === EventSource.CLOSED) setTimeout(start, 3000);
    };
  }
  function start() {
    connect().catch(() => {
      state.textContent = 'cannot load the repositories: trying again';
      setTimeout(start, 3000);
    });
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, field.value);
    field.value = '';
    start();
  });
  start();
})();
</script>
</body>
</html>
`;
