/**
 * The gateway's web page: each repository with its last revision and when it came, and a live feed (SSE, the
 * gateway's /api/v1/notifications/feed). Plain HTML and script, no build step; URLs are relative, so it works
 * behind a proxy that moves the gateway under a path.
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
  async function load() {
    const r = await fetch('api/v1/repositories', { cache: 'no-store' });
    for (const s of (await r.json()).repositories) show(s, false);
  }
  const es = new EventSource('api/v1/notifications/feed');
  es.addEventListener('activity', (e) => show(JSON.parse(e.data), true));
  // Loaded once the feed is open, so nothing published in between is missed; after a reconnection, again.
  es.onopen = () => { state.textContent = 'live'; load().catch(() => { state.textContent = 'cannot load the repositories'; }); };
  es.onerror = () => { state.textContent = 'reconnecting...'; };
})();
</script>
</body>
</html>
`;
