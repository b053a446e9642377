// A first, plain page: the hottest keys of each namespace over the last minute, refreshed live.
const WINDOW = 60;
const statusEl = document.getElementById('status');
const main = document.getElementById('namespaces');

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message ?? `${path} answered ${res.status}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function refresh() {
  try {
    const { totals } = await getJson(`/api/totals?window=${WINDOW}`);
    const namespaces = [...new Set(totals.map((t) => t.ns))].sort();
    const sections = await Promise.all(
      namespaces.map(async (ns) => {
        const hot = await getJson(`/api/hot-keys?ns=${encodeURIComponent(ns)}&window=${WINDOW}&limit=5`);
        const table = el(
          'table',
          {},
          el(
            'tr',
            {},
            el('th', {}, 'key'),
            el('th', { class: 'num' }, 'decisions'),
            el('th', { class: 'num' }, 'share'),
            el('th', {}, ''),
          ),
        );
        for (const k of hot.keys) {
          table.append(
            el(
              'tr',
              { 'data-key': k.key },
              el('td', {}, k.key),
              el('td', { class: 'num' }, String(k.count)),
              el('td', { class: 'num' }, `${(k.share * 100).toFixed(1)}%`),
              el('td', {}, el('div', { class: 'bar', style: `width:${Math.max(2, k.share * 100)}%` })),
            ),
          );
        }
        return el(
          'section',
          { 'data-ns': ns },
          el('h2', {}, `${ns} — ${hot.total} decisions in ${WINDOW}s`),
          table,
        );
      }),
    );
    main.replaceChildren(
      ...(sections.length ? sections : [el('p', { class: 'empty' }, 'No decisions in the last minute yet.')]),
    );
    statusEl.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    statusEl.textContent = `could not load: ${err.message}`;
  }
}

refresh();
setInterval(refresh, 2000);
