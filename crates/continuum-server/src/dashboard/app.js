// Continuum's dashboard: a small single-page application over the REST API, with no build
// step and no dependency. Everything the page shows is built with DOM calls (never from HTML
// strings), so stored text cannot inject markup. The API key lives in this tab's session
// storage only and travels in the X-API-Key header; it is never put in a URL or a cookie.

const KEY = 'continuum.key';
const RANK = { read: 1, write: 2, admin: 3, operator: 4 };
const SOURCES = ['user', 'assistant', 'thinking', 'system', 'document', 'fact', 'note'];
const main = document.getElementById('main');
const session = { key: null, who: null };
let live = null; // the open WebSocket, if any
let onEvent = null; // what the current page does with a live event

// ---- building blocks -------------------------------------------------------------------

// h('tag', {attr: value, onclick: fn, text: 'x'}, child, ...): an element. Strings become
// text nodes; null, undefined and false children are skipped; arrays are flattened.
function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !svg) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

function say(message, isError) {
  const s = document.getElementById('status');
  s.replaceChildren(h('span', { class: isError ? 'error' : null, text: message }));
  clearTimeout(say.timer);
  say.timer = setTimeout(() => s.replaceChildren(), isError ? 10000 : 5000);
}

function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function cut(text, n) {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

function can(scope) {
  return !!session.who && RANK[session.who.scope] >= RANK[scope];
}

// Confirmation through the page's <dialog>; resolves to true when confirmed.
function confirmThat(title, text, action) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = action;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) =>
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

// ---- the API ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, key) {
  const headers = { 'X-API-Key': key || session.key };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) {
    const message = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
    if (r.status === 401 && !key) {
      signOut(`Signed out: ${message}`);
    }
    throw new ApiError(r.status, message);
  }
  return data;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

// ---- signing in and out ------------------------------------------------------------------

async function signIn(key) {
  const who = await api('GET', '/v1/whoami', undefined, key);
  session.key = key;
  session.who = who;
  sessionStorage.setItem(KEY, key);
  chrome();
}

function signOut(message) {
  session.key = null;
  session.who = null;
  sessionStorage.removeItem(KEY);
  if (live) { live.close(); live = null; }
  chrome();
  if (message) say(message, true);
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else route();
}

// The header: navigation and the signed-in identity, or nothing before sign-in.
function chrome() {
  const nav = document.getElementById('nav');
  const out = document.getElementById('signout');
  const who = document.getElementById('who');
  nav.hidden = out.hidden = !session.who;
  who.textContent = session.who
    ? `${session.who.tenant} · ${session.who.scope} key ${session.who.key || ''}`
    : '';
  for (const a of nav.querySelectorAll('a[data-needs]')) {
    a.parentElement.hidden = !can(a.dataset.needs);
  }
}

function pageSignIn(_params, reason) {
  const input = h('input', {
    id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false',
  });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', {
    class: 'signin card',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await signIn(input.value.trim());
        location.hash = '#/search';
      } catch (err) {
        error.textContent = err.status === 401 || err.status === 403
          ? `This key was refused: ${err.message}`
          : err.message;
        input.focus();
      }
    },
  },
  h('h1', { text: 'Sign in' }),
  h('p', { class: 'meta', text: 'Use an API key made with `continuum keys create`. It is kept in this tab only and forgotten when you sign out or close the tab.' }),
  h('label', { for: 'key', text: 'API key' }), input,
  h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Sign in' })),
  error);
  if (reason) error.textContent = reason;
  show('Sign in', form);
  input.focus();
}

// ---- pages -----------------------------------------------------------------------------

function show(title, ...content) {
  document.title = `${title} · Continuum`;
  main.replaceChildren(...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === current.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function failed(title, err) {
  show(title, h('h1', { text: title }), h('p', { class: 'error', role: 'alert', text: err.message }));
}

function memoryLink(m, text) {
  return h('a', { href: `#/memory/${m.id}` }, text || cut(m.content, 160));
}

function memoryMeta(m) {
  return h('p', { class: 'meta' },
    `${m.source} · ${when(m.created_at)}`,
    m.session ? [' · session ', h('a', { href: `#/session/${encodeURIComponent(m.session)}`, text: m.session })] : null,
    m.superseded_by || m.superseded ? ' · superseded' : null);
}

function memoryCard(m, isNew) {
  return h('li', { class: isNew ? 'card new' : 'card' },
    h('p', { class: 'content' }, memoryLink(m)), memoryMeta(m));
}

function signalBar(name, value) {
  const v = Number(value) || 0;
  const bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
  bar.style.width = `${Math.round(v * 4)}rem`;
  return h('span', null, `${name} ${v.toFixed(2)}`, bar);
}

async function pageSearch(params) {
  const q = params.get('q') || '';
  const input = h('input', { id: 'q', name: 'q', type: 'search', value: q, required: true });
  const form = h('form', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      location.hash = `#/search${qs({ q: input.value.trim() })}`;
    },
  },
  h('label', { for: 'q', text: 'Search memories' }),
  h('div', { class: 'row' }, h('div', { class: 'grow' }, input), h('button', { type: 'submit', text: 'Search' })));
  const results = h('section', { 'aria-label': 'Results' });
  show(q ? `Search: ${q}` : 'Search', h('h1', { text: 'Search and recall' }), form, results);
  if (!q) { input.focus(); return; }
  results.append(h('p', { class: 'meta', text: 'Searching…' }));
  try {
    const r = await api('POST', '/v1/recall/native', { query: q, limit: 20 });
    const items = r.memories.map((m, i) => h('li', { class: 'card' },
      h('p', { class: 'content' }, `${i + 1}. `, memoryLink(m)),
      memoryMeta(m),
      h('p', { class: 'signals', 'aria-label': 'Scores' },
        h('span', null, h('strong', { text: `score ${m.score.toFixed(3)}` })),
        signalBar('lexical', m.signals.lexical), signalBar('semantic', m.signals.semantic),
        signalBar('graph', m.signals.graph), signalBar('recency', m.signals.recency)),
      h('p', { class: 'meta' }, 'Why: ',
        m.matched_terms.length ? `terms ${m.matched_terms.join(', ')}` : 'no query term in the text',
        m.matched_concepts.length ? ['; concepts ', m.matched_concepts.map((c, j) =>
          [j ? ', ' : '', h('a', { href: `#/graph${qs({ concept: c })}`, text: c })])] : null,
        m.duplicates ? `; ${m.duplicates} near-duplicates folded in` : null)));
    results.replaceChildren(
      h('h2', { text: `${r.memories.length} memories` }),
      r.memories.length ? h('ol', { class: 'list' }, items) : h('p', { text: 'Nothing relevant is stored.' }),
      h('details', null,
        h('summary', { text: `The context block the agent gets (${r.context_tokens} of ${r.budget_tokens} tokens)` }),
        h('pre', { text: r.context || '(empty)' })));
    say(`${r.memories.length} memories found`);
  } catch (err) {
    results.replaceChildren(h('p', { class: 'error', role: 'alert', text: err.message }));
  }
}

async function pageMemories(params) {
  const f = Object.fromEntries(['source', 'session', 'since', 'until'].map((k) => [k, params.get(k) || '']));
  const field = (id, label, control) => h('div', null, h('label', { for: id, text: label }), control);
  const source = h('select', { id: 'f-source', name: 'source' },
    h('option', { value: '', text: 'Any' }),
    SOURCES.map((s) => h('option', { value: s, text: s, selected: s === f.source })));
  const sess = h('input', { id: 'f-session', name: 'session', value: f.session });
  const since = h('input', { id: 'f-since', name: 'since', type: 'date', value: f.since });
  const until = h('input', { id: 'f-until', name: 'until', type: 'date', value: f.until });
  const form = h('form', {
    class: 'filters',
    'aria-label': 'Filters',
    onsubmit: (e) => {
      e.preventDefault();
      location.hash = `#/memories${qs({ source: source.value, session: sess.value.trim(), since: since.value, until: until.value })}`;
    },
  },
  field('f-source', 'Source', source), field('f-session', 'Session', sess),
  field('f-since', 'From', since), field('f-until', 'To', until),
  h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Apply' })));
  const list = h('ol', { class: 'list', 'aria-label': 'Memories' });
  const more = h('button', { type: 'button', class: 'secondary', text: 'Older memories', hidden: true });
  show('Memories', h('h1', { text: 'Memories' }), form, list, h('div', { class: 'row' }, more));
  let cursor = null;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await api('GET', `/v1/memories${qs({ ...f, limit: 20, cursor })}`);
      list.append(...page.items.map((m) => memoryCard(m)));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!list.children.length) list.replaceWith(h('p', { text: 'No memories match.' }));
    } catch (err) {
      say(err.message, true);
    }
    more.disabled = false;
  };
  more.addEventListener('click', load);
  await load();
  const filtered = Object.values(f).some((v) => v);
  if (!filtered) {
    // New memories appear at the top as they are stored.
    onEvent = async (e) => {
      if (e.type === 'memory.forgotten' && e.id) {
        const gone = list.querySelector(`a[href="#/memory/${e.id}"]`);
        if (gone) gone.closest('li').remove();
        return;
      }
      if (e.type !== 'memory.created' || !e.memory) return;
      if (list.querySelector(`a[href="#/memory/${e.memory.id}"]`)) return;
      list.prepend(memoryCard(e.memory, true));
      say('A new memory arrived');
    };
  }
}

async function pageMemory(params, id) {
  try {
    const [m, versions, concepts] = await Promise.all([
      api('GET', `/v1/memories/${encodeURIComponent(id)}`),
      api('GET', `/v1/memories/${encodeURIComponent(id)}/versions`),
      api('GET', `/v1/memories/${encodeURIComponent(id)}/concepts`),
    ]);
    const parts = [
      h('h1', { text: 'Memory' }),
      h('blockquote', { class: 'card content', text: m.content }),
      h('dl', { class: 'kv' },
        h('dt', { text: 'Id' }), h('dd', null, h('code', { text: m.id })),
        h('dt', { text: 'Source' }), h('dd', { text: `${m.source} (${m.kind})` }),
        h('dt', { text: 'Stored' }), h('dd', { text: when(m.created_at) }),
        h('dt', { text: 'Session' }), h('dd', null, m.session
          ? h('a', { href: `#/session/${encodeURIComponent(m.session)}`, text: m.session }) : '—'),
        m.superseded_by ? [h('dt', { text: 'Superseded by' }), h('dd', null, h('a', { href: `#/memory/${m.superseded_by}`, text: 'the newer version' }))] : null,
        m.valid_until ? [h('dt', { text: 'Valid until' }), h('dd', { text: when(m.valid_until) })] : null),
      m.metadata && Object.keys(m.metadata).length
        ? [h('h2', { text: 'Metadata' }), h('pre', { text: JSON.stringify(m.metadata, null, 2) })] : null,
      h('h2', { text: 'Concepts' }),
      concepts.concepts.length
        ? h('ul', { class: 'tags', 'aria-label': 'Concepts' }, concepts.concepts.map((c) =>
          h('li', null, h('a', { href: `#/graph${qs({ concept: c.key })}`, text: c.name }))))
        : h('p', { class: 'meta', text: 'No concept was found in this text.' }),
      h('h2', { text: 'Versions' }),
      versions.versions.length > 1
        ? h('ol', { class: 'versions', 'aria-label': 'Versions, oldest first' }, versions.versions.map((v) =>
          h('li', { 'aria-current': v.id === m.id ? 'true' : null },
            v.id === m.id ? `${cut(v.content, 120)} (this version)` : memoryLink(v, cut(v.content, 120)),
            h('span', { class: 'meta', text: ` · ${when(v.created_at)}` }))))
        : h('p', { class: 'meta', text: 'This is the only version.' }),
    ];
    if (can('write')) {
      const text = h('textarea', { id: 'new-text', name: 'content', required: true, text: m.content });
      parts.push(
        h('h2', { text: 'Edit' }),
        h('form', {
          onsubmit: async (e) => {
            e.preventDefault();
            try {
              const next = await api('POST', `/v1/memories/${m.id}/supersede`, { content: text.value, source: m.source });
              say('Saved as a new version; the old one is kept, marked superseded');
              location.hash = `#/memory/${next.id}`;
            } catch (err) { say(err.message, true); }
          },
        },
        h('label', { for: 'new-text', text: 'New text' }), text,
        h('p', { class: 'meta', text: 'Saving stores a new version; this one is kept, marked superseded.' }),
        h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Save new version' }))),
        h('h2', { text: 'Forget' }),
        h('div', { class: 'row' }, h('button', {
          type: 'button', class: 'danger', text: 'Forget this memory',
          onclick: async () => {
            if (!await confirmThat('Forget this memory?', 'It is deleted from the store and every index. This cannot be undone.', 'Forget')) return;
            try {
              await api('DELETE', `/v1/memories/${m.id}`);
              say('The memory was forgotten');
              location.hash = '#/memories';
            } catch (err) { say(err.message, true); }
          },
        })));
    }
    show('Memory', ...parts);
  } catch (err) {
    failed('Memory', err);
  }
}

async function pageSessions(params) {
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  try {
    const r = await api('GET', `/v1/sessions${qs({ limit: 20, offset })}`);
    const rows = r.sessions.map((s) => h('tr', null,
      h('td', null, h('a', { href: `#/session/${encodeURIComponent(s.id)}`, text: s.id })),
      h('td', { text: when(s.started_at) }), h('td', { text: when(s.last_at) }),
      h('td', { text: s.memories })));
    show('Sessions', h('h1', { text: 'Sessions' }),
      rows.length
        ? h('div', { class: 'scroll' }, h('table', null,
          h('thead', null, h('tr', null, ['Session', 'Started', 'Last', 'Memories'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', null, rows)))
        : h('p', { text: 'No sessions yet.' }),
      h('div', { class: 'row' },
        offset > 0 ? h('a', { href: `#/sessions${qs({ offset: Math.max(0, offset - 20) })}`, text: 'Newer' }) : null,
        r.sessions.length === 20 ? h('a', { href: `#/sessions${qs({ offset: offset + 20 })}`, text: 'Older' }) : null));
  } catch (err) {
    failed('Sessions', err);
  }
}

async function pageSession(params, id) {
  const list = h('ol', { class: 'list', 'aria-label': 'Turns, in order' });
  const more = h('button', { type: 'button', class: 'secondary', text: 'Later turns', hidden: true });
  const parts = [h('h1', null, 'Session ', h('code', { text: id })), list, h('div', { class: 'row' }, more)];
  if (can('write')) {
    parts.push(h('div', { class: 'row' }, h('button', {
      type: 'button', class: 'danger', text: 'Forget this session',
      onclick: async () => {
        if (!await confirmThat('Forget this session?', `Every memory of session ${id} is deleted. This cannot be undone.`, 'Forget')) return;
        try {
          const r = await api('DELETE', `/v1/sessions/${encodeURIComponent(id)}`);
          say(`${r.forgotten} memories forgotten`);
          location.hash = '#/sessions';
        } catch (err) { say(err.message, true); }
      },
    })));
  }
  show(`Session ${id}`, ...parts);
  let cursor = null;
  const load = async () => {
    try {
      const page = await api('GET', `/v1/memories${qs({ session: id, order: 'oldest', limit: 50, cursor })}`);
      list.append(...page.items.map((m) => h('li', { class: `turn ${m.source}` },
        h('p', { class: 'meta' }, h('strong', { text: m.source }), ` · ${when(m.created_at)} · `, memoryLink(m, 'open')),
        h('p', { class: 'content', text: m.content }))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!list.children.length) list.replaceWith(h('p', { text: 'This session has no memories.' }));
    } catch (err) {
      say(err.message, true);
    }
  };
  more.addEventListener('click', load);
  await load();
}

// A concept's neighbourhood: the concept in the middle, its neighbours on a circle, edges as
// thick as the links are strong. Every node is a link, so the graph works with the keyboard.
function drawGraph(g, centre) {
  const W = 640, H = 440, R = 170, cx = W / 2, cy = H / 2;
  const others = g.nodes.filter((n) => n.key !== centre);
  const at = new Map([[centre, [cx, cy]]]);
  others.forEach((n, i) => {
    const a = others.length === 2
      ? -Math.PI / 2 + (i ? 1 : -1) * Math.PI / 3
      : (2 * Math.PI * i) / Math.max(1, others.length) - Math.PI / 2;
    at.set(n.key, [cx + R * Math.cos(a), cy + R * Math.sin(a)]);
  });
  const top = Math.max(1e-9, ...g.edges.map((e) => e.strength));
  const svg = h('svg:svg', { class: 'graph', viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-label': `Concepts linked to ${centre}` });
  for (const e of g.edges) {
    const a = at.get(e.a), b = at.get(e.b);
    if (!a || !b) continue;
    svg.append(h('svg:line', {
      x1: a[0], y1: a[1], x2: b[0], y2: b[1], 'stroke-width': (1 + 7 * e.strength / top).toFixed(1),
    }, h('svg:title', { text: `${e.a} – ${e.b}: strength ${e.strength.toFixed(3)}` })));
  }
  for (const n of g.nodes) {
    const [x, y] = at.get(n.key) || [cx, cy];
    svg.append(h('svg:a', {
      href: `#/graph${qs({ concept: n.key })}`, class: n.key === centre ? 'centre' : null,
      'aria-label': `${n.name}${n.mentions ? `, ${n.mentions} mentions` : ''}`,
    },
    h('svg:circle', { cx: x, cy: y, r: n.key === centre ? 14 : 9 }),
    h('svg:text', { x, y: y + 26, text: cut(n.name, 24) })));
  }
  return svg;
}

async function pageGraph(params) {
  const name = params.get('concept') || '';
  const input = h('input', { id: 'concept', name: 'concept', value: name, required: true });
  const form = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      location.hash = `#/graph${qs({ concept: input.value.trim() })}`;
    },
  },
  h('label', { for: 'concept', text: 'Concept' }),
  h('div', { class: 'row' }, h('div', { class: 'grow' }, input), h('button', { type: 'submit', text: 'Show' })));
  const out = h('section', { 'aria-label': 'Neighbourhood' });
  show(name ? `Graph: ${name}` : 'Graph', h('h1', { text: 'Concept graph' }), form, out);
  const conceptLink = (c) => h('a', { href: `#/graph${qs({ concept: c.key })}`, text: c.name });
  const joined = (list) => list.map((c, i) => [i ? ', ' : '', conceptLink(c)]);
  if (!name) {
    out.append(h('p', { class: 'meta', text: 'Name a concept (a word or phrase from your memories), or start from what the graph says below.' }));
    input.focus();
    try {
      const r = await api('GET', `/v1/insights${qs({ limit: 8 })}`);
      out.append(
        h('h2', { text: 'Clusters' }),
        r.clusters.length
          ? h('ol', { 'aria-label': 'Clusters' }, r.clusters.map((c) => h('li', null, `${c.size} concepts: `, joined(c.concepts))))
          : h('p', { class: 'meta', text: 'Not enough links yet.' }),
        h('h2', { text: 'Bridges' }),
        r.bridges.length
          ? h('ul', { 'aria-label': 'Bridges' }, r.bridges.map((b) => h('li', null, conceptLink(b.concept), ` joins clusters ${b.joins.map((j) => j + 1).join(' and ')} (betweenness ${b.betweenness.toFixed(2)})`)))
          : h('p', { class: 'meta', text: 'No concept joins two clusters yet.' }),
        h('h2', { text: 'Worth checking: never together, but near' }),
        r.hypotheses.length
          ? h('ul', { 'aria-label': 'Hypotheses' }, r.hypotheses.map((x) => h('li', null, conceptLink(x.a), ' ~ ', conceptLink(x.b), ' through ', joined(x.via))))
          : h('p', { class: 'meta', text: 'None yet.' }),
        h('p', { class: 'meta', text: `Read from ${r.graph.concepts} concepts and ${r.graph.links} links; modularity ${r.modularity.toFixed(2)}.` }));
    } catch (err) {
      out.append(h('p', { class: 'error', text: err.message }));
    }
    return;
  }
  try {
    const [g, c] = await Promise.all([
      api('GET', `/v1/graph${qs({ concept: name, limit: 16 })}`),
      api('GET', `/v1/concepts/${encodeURIComponent(name)}${qs({ limit: 16 })}`),
    ]);
    out.replaceChildren(
      h('h2', { text: c.concept.name }),
      drawGraph(g, c.concept.key),
      h('h2', { text: 'Links' }),
      c.neighbours.length
        ? h('div', { class: 'scroll' }, h('table', null,
          h('thead', null, h('tr', null, ['Concept', 'Strength', 'Seen together'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', null, c.neighbours.map((n) => h('tr', null,
            h('td', null, h('a', { href: `#/graph${qs({ concept: n.key })}`, text: n.name })),
            h('td', { text: n.strength.toFixed(3) }), h('td', { text: n.count }))))))
        : h('p', { class: 'meta', text: 'No links yet.' }),
      h('h2', { text: 'Memories that mention it' }),
      h('ol', { class: 'list' }, (c.memories || []).map((m) => memoryCard(m))),
      h('h2', { text: 'Dream from here' }),
      dreamBox(c.concept.key));
  } catch (err) {
    out.replaceChildren(h('p', { class: 'error', role: 'alert', text: err.status === 404 ? `No concept "${name}" is stored.` : err.message }));
  }
}

// A seeded walk from a concept; the seed is shown so the same walk can be had again.
function dreamBox(from) {
  const out = h('ol', { 'aria-label': 'Dream' });
  const note = h('p', { class: 'meta' });
  const go = async () => {
    try {
      const d = await api('GET', `/v1/dream${qs({ from, steps: 8 })}`);
      out.replaceChildren(...d.steps.map((s) => h('li', null,
        h('a', { href: `#/graph${qs({ concept: s.concept.key })}`, text: s.concept.name }),
        s.by === 'jump' ? ' (a jump: no way on)' : s.weak ? ` (weak link ${s.strength.toFixed(2)})` : s.strength ? ` (link ${s.strength.toFixed(2)})` : '',
        (s.memories || []).length ? h('span', { class: 'meta', text: ` — “${cut(s.memories[0].content, 120)}”` }) : null)));
      note.textContent = `Seed ${d.seed}: ${d.weak_links} weak links, ${d.jumps} jumps, ${d.cycles} returns.`;
    } catch (err) { note.textContent = err.message; }
  };
  return h('div', null, h('button', { type: 'button', class: 'secondary', text: 'Dream', onclick: go }), out, note);
}

// Any JSON as something readable: scalars in a list, arrays of records as tables.
function render(value) {
  if (Array.isArray(value)) {
    if (!value.length) return h('p', { class: 'meta', text: 'None.' });
    if (typeof value[0] !== 'object' || value[0] === null) return h('p', { text: value.join(', ') });
    const cols = [...new Set(value.flatMap((r) => Object.keys(r)))].slice(0, 9);
    return h('div', { class: 'scroll' }, h('table', null,
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', null, value.map((r) => h('tr', null, cols.map((c) => h('td', { text: cell(r[c]) })))))));
  }
  if (value && typeof value === 'object') {
    return h('dl', { class: 'kv' }, Object.entries(value).map(([k, v]) => [
      h('dt', { text: k }),
      h('dd', null, v && typeof v === 'object' ? render(v) : cell(v))]));
  }
  return h('p', { text: cell(value) });
}

function cell(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

async function section(title, load) {
  const body = h('div', null, h('p', { class: 'meta', text: 'Loading…' }));
  const el = h('section', { 'aria-labelledby': `s-${title}` }, h('h2', { id: `s-${title}`, text: title }), body);
  (async () => {
    try { body.replaceChildren(...[].concat(await load())); } catch (err) {
      body.replaceChildren(h('p', { class: 'error', text: err.message }));
    }
  })();
  return el;
}

function secretShown(label, secret) {
  return h('div', { class: 'card', role: 'alert' },
    h('p', null, h('strong', { text: label })),
    h('code', { class: 'secret', text: secret }),
    h('p', { class: 'meta', text: 'Copy it now: it is shown this once and stored only as a hash.' }));
}

async function keysSection() {
  const out = h('div');
  const table = h('div', { class: 'scroll' });
  const refresh = async () => {
    const r = await api('GET', '/v1/keys');
    table.replaceChildren(h('table', null,
      h('thead', null, h('tr', null, ['Key', 'Tenant', 'Scope', 'Name', 'Created', 'State', ''].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', null, r.keys.map(keyRow))));
  };
  const keyRow = (k) => h('tr', null,
    h('td', null, h('code', { text: k.prefix })), h('td', { text: k.tenant }), h('td', { text: k.scope }),
    h('td', { text: k.name || '' }), h('td', { text: when(k.created_at) }),
    h('td', { text: k.revoked_at ? `revoked ${when(k.revoked_at)}` : k.expires_at ? `expires ${when(k.expires_at)}` : 'active' }),
    h('td', null, k.revoked_at || k.prefix === session.who.key ? null : [
      h('button', {
        type: 'button', class: 'secondary', text: 'Rotate', 'aria-label': `Rotate key ${k.prefix}`,
        onclick: async () => {
          try {
            const n = await api('POST', `/v1/keys/${k.prefix}/rotate`, {});
            out.replaceChildren(secretShown(`Key ${k.prefix} rotated: the new key ${n.prefix} (the old one works until ${when(n.replaced_key_expires_at)})`, n.key));
            await refresh();
          } catch (err) { say(err.message, true); }
        },
      }), ' ',
      h('button', {
        type: 'button', class: 'danger', text: 'Revoke', 'aria-label': `Revoke key ${k.prefix}`,
        onclick: async () => {
          if (!await confirmThat(`Revoke key ${k.prefix}?`, 'It stops working at once.', 'Revoke')) return;
          try { await api('DELETE', `/v1/keys/${k.prefix}`); say(`Key ${k.prefix} revoked`); await refresh(); } catch (err) { say(err.message, true); }
        },
      })]));
  const scopes = ['read', 'write', 'admin'].concat(can('operator') ? ['operator'] : []);
  const scope = h('select', { id: 'k-scope', name: 'scope' }, scopes.map((s) => h('option', { value: s, text: s })));
  const name = h('input', { id: 'k-name', name: 'name', maxlength: 200 });
  const form = h('form', {
    class: 'filters',
    'aria-label': 'New key',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const k = await api('POST', '/v1/keys', { scope: scope.value, name: name.value.trim() || undefined });
        out.replaceChildren(secretShown(`New ${k.scope} key ${k.prefix}`, k.key));
        say('Key created');
        await refresh();
      } catch (err) { say(err.message, true); }
    },
  },
  h('div', null, h('label', { for: 'k-scope', text: 'Scope' }), scope),
  h('div', null, h('label', { for: 'k-name', text: 'Name' }), name),
  h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Create key' })));
  await refresh();
  return [out, form, table];
}

async function tenantsSection() {
  const r = await api('GET', '/v1/tenants');
  const out = h('div');
  const id = h('input', { id: 't-id', name: 'tenant', pattern: '[A-Za-z0-9_.\\-]{1,64}', required: true });
  const form = h('form', {
    class: 'filters',
    'aria-label': 'New tenant',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const t = await api('POST', '/v1/tenants', { tenant: id.value.trim() });
        out.replaceChildren(secretShown(`Tenant ${t.tenant} created; its first admin key`, t.key));
      } catch (err) { say(err.message, true); }
    },
  },
  h('div', null, h('label', { for: 't-id', text: 'New tenant' }), id),
  h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Create tenant' })));
  return [out, form, render(r.tenants)];
}

async function auditSection() {
  const rows = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', text: 'Older entries', hidden: true });
  let before = null;
  const load = async () => {
    const r = await api('GET', `/v1/audit${qs({ order: 'newest', limit: 50, before })}`);
    rows.append(...r.entries.map((e) => h('tr', null,
      h('td', { text: e.seq }), h('td', { text: when(e.at) }), h('td', { text: e.action }),
      h('td', { text: e.tenant || '' }), h('td', { text: e.actor }), h('td', { text: e.outcome }),
      h('td', { text: e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '' }))));
    before = r.next_before;
    more.hidden = !before;
  };
  more.addEventListener('click', () => load().catch((err) => say(err.message, true)));
  await load();
  const parts = [
    h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Audit log' },
      h('thead', null, h('tr', null, ['#', 'When', 'Action', 'Tenant', 'Actor', 'Outcome', 'Details'].map((t) => h('th', { scope: 'col', text: t })))),
      rows)),
    h('div', { class: 'row' }, more),
  ];
  if (can('operator')) {
    const result = h('div');
    parts.push(h('div', { class: 'row' }, h('button', {
      type: 'button', class: 'secondary', text: 'Verify the hash chain',
      onclick: async () => {
        try { result.replaceChildren(render(await api('GET', '/v1/audit/verify'))); } catch (err) { say(err.message, true); }
      },
    })), result);
  }
  return parts;
}

async function webhooksSection() {
  const out = h('div');
  const table = h('div');
  const refresh = async () => {
    const r = await api('GET', '/v1/webhooks');
    table.replaceChildren(r.webhooks.length
      ? h('div', { class: 'scroll' }, h('table', null,
        h('thead', null, h('tr', null, ['Receiver', 'Events', 'State', 'Description', ''].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', null, r.webhooks.map((w) => h('tr', null,
          h('td', null, h('code', { text: w.url })), h('td', { text: w.events.length ? w.events.join(', ') : 'every type' }),
          h('td', { text: w.disabled_reason ? `${w.state}: ${w.disabled_reason}` : w.state }),
          h('td', { text: w.description || '' }),
          h('td', null, h('button', {
            type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete webhook ${w.url}`,
            onclick: async () => {
              if (!await confirmThat('Delete this webhook?', `Nothing more is sent to ${w.url}.`, 'Delete')) return;
              try { await api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`); say('Webhook deleted'); await refresh(); } catch (err) { say(err.message, true); }
            },
          })))))))
      : h('p', { class: 'meta', text: 'None.' }));
  };
  const target = h('input', { id: 'w-url', name: 'url', type: 'url', required: true, maxlength: 2048 });
  const desc = h('input', { id: 'w-desc', name: 'description', maxlength: 500 });
  const form = h('form', {
    class: 'filters',
    'aria-label': 'New webhook',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const w = await api('POST', '/v1/webhooks', { url: target.value.trim(), description: desc.value.trim() || undefined });
        out.replaceChildren(secretShown(`Webhook to ${w.url}: its signing secret`, w.secret));
        await refresh();
      } catch (err) { say(err.message, true); }
    },
  },
  h('div', null, h('label', { for: 'w-url', text: 'Receiver URL' }), target),
  h('div', null, h('label', { for: 'w-desc', text: 'Description' }), desc),
  h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Add webhook' })));
  await refresh();
  return [out, form, table];
}

async function backupsSection() {
  try {
    const r = await api('GET', '/v1/backups');
    return [
      h('p', null, 'Schedule ', h('code', { text: r.schedule }), ', to ', h('code', { text: r.destination })),
      r.backups.length
        ? h('div', { class: 'scroll' }, h('table', null,
          h('thead', null, h('tr', null, ['Backup', 'Made', 'Kind', 'Tenants', 'Memories', 'Stored', 'State'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', null, r.backups.slice().reverse().map((b) => h('tr', null,
            h('td', null, h('code', { text: b.id })), h('td', { text: when(b.created_at) }),
            h('td', { text: b.kind ? (b.parent ? `${b.kind} on ${b.parent}` : b.kind) : '' }),
            h('td', { text: b.tenants }), h('td', { text: b.memories }),
            h('td', { text: `${(b.stored_bytes / 1024).toFixed(1)} KiB` }),
            h('td', { text: b.complete ? 'complete' : b.problem || 'incomplete (not restorable)' }))))))
        : h('p', { class: 'meta', text: 'No backup has been made yet.' }),
      h('p', { class: 'meta', text: 'Verify and restore with `continuum backup verify ID` and `continuum backup restore ID`.' }),
    ];
  } catch (err) {
    if (err.status === 404) return h('p', { class: 'meta', text: 'This server makes no scheduled backups (`continuum serve --backup-schedule`).' });
    throw err;
  }
}

async function pageOps() {
  if (!can('admin')) {
    show('Operations', h('h1', { text: 'Operations' }), h('p', { text: 'Operations need an admin or operator key.' }));
    return;
  }
  const jobs = async () => {
    const r = await api('GET', '/v1/ready');
    return [h('p', null, `Server: ${r.status}`), render(r.jobs || [])];
  };
  show('Operations', h('h1', { text: 'Operations' }),
    await section('Store', async () => render(await api('GET', '/v1/stats'))),
    await section('Plan', async () => render(await api('GET', '/v1/plan'))),
    await section('Background jobs (backups, sync, webhooks, embeddings)', jobs),
    await section('Usage', async () => render((await api('GET', '/v1/usage')).days || [])),
    await section('Keys', keysSection),
    can('operator') ? await section('Tenants', tenantsSection) : null,
    can('operator') ? await section('Backups', backupsSection) : null,
    await section('Webhooks', webhooksSection),
    await section('Audit log (newest first)', auditSection));
}

// ---- reflection: intentions, contradictions, calibration --------------------------------

async function intentionsSection() {
  const list = h('div');
  const refresh = async () => {
    const r = await api('GET', '/v1/intentions/resume');
    const group = (name, items) => (items.length ? [
      h('h3', { text: name }),
      h('ul', { 'aria-label': `${name} priority intentions` }, items.map((i) => h('li', null,
        h('span', { text: `${i.text} ` }), h('span', { class: 'meta', text: `(priority ${i.priority}, ${when(i.created_at)})` }),
        can('write') ? h('button', {
          type: 'button', class: 'secondary', text: 'Done', 'aria-label': `Done: ${i.text}`,
          onclick: async () => {
            try { await api('POST', `/v1/intentions/${encodeURIComponent(i.id)}/done`); say('Marked done'); await refresh(); } catch (err) { say(err.message, true); }
          },
        }) : null))),
    ] : []);
    list.replaceChildren(h('p', { text: r.summary }),
      ...group('High', r.high), ...group('Medium', r.medium), ...group('Low', r.low));
  };
  await refresh();
  return list;
}

async function contradictionsSection() {
  const list = h('div');
  const refresh = async () => {
    const r = await api('GET', `/v1/contradictions${qs({ status: 'open', limit: 50 })}`);
    list.replaceChildren(r.contradictions.length
      ? h('ul', { 'aria-label': 'Open contradictions' }, r.contradictions.map((c) => h('li', { class: 'card' },
        h('p', null, h('strong', { text: c.kind }), h('span', { class: 'meta', text: ` (${c.method}) — ${c.evidence}` })),
        h('p', { text: `Earlier: ${c.earlier_text || '(gone)'}` }),
        h('p', { text: `Later: ${c.later_text || '(gone)'}` }),
        can('write') ? h('div', { class: 'row' }, [['earlier', c.earlier, c.earlier_text], ['later', c.later, c.later_text]].map(([which, id, text]) => h('button', {
          type: 'button', class: 'secondary', text: `Keep the ${which}`, 'aria-label': `Keep “${text}”`,
          onclick: async () => {
            try {
              await api('POST', `/v1/contradictions/${encodeURIComponent(c.id)}/resolve`, { keep: id });
              say('Resolved: the other belief is superseded');
              await refresh();
            } catch (err) { say(err.message, true); }
          },
        }))) : null)))
      : h('p', { class: 'meta', text: 'No open contradictions.' }));
  };
  await refresh();
  return list;
}

async function calibrationSection() {
  const r = await api('GET', '/v1/calibration');
  const line = (c) => (c.brier === null
    ? `${c.category || 'All categories'}: no verified claims yet (${c.open} open).`
    : `${c.category || 'All categories'}: ${c.claims} verified, ${c.correct} correct, Brier ${c.brier.toFixed(3)}, ECE ${c.ece.toFixed(3)}. ${c.advice}`);
  return [h('p', { text: line(r) }),
    r.categories.length ? h('ul', { 'aria-label': 'Calibration by category' }, r.categories.map((c) => h('li', { text: line(c) }))) : null,
    r.bins.some((b) => b.count) ? h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Reliability' },
      h('thead', null, h('tr', null, ['Confidence', 'Claims', 'Mean confidence', 'Accuracy'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', null, r.bins.filter((b) => b.count).map((b) => h('tr', null,
        h('td', { text: `${b.low.toFixed(1)}–${b.high.toFixed(1)}` }), h('td', { text: b.count }),
        h('td', { text: b.confidence.toFixed(2) }), h('td', { text: b.accuracy.toFixed(2) }))))))
      : null];
}

async function pageReflection() {
  show('Reflection', h('h1', { text: 'Reflection' }),
    await section('Intentions', intentionsSection),
    await section('Contradictions', contradictionsSection),
    await section('Calibration', calibrationSection));
}

// ---- live events -------------------------------------------------------------------------

// One WebSocket per signed-in tab, authenticated by its first message (never the URL).
function connectLive() {
  if (live || !session.key) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws?types=memory.created,memory.forgotten`;
  let ws;
  try { ws = new WebSocket(url); } catch (e) { return; }
  live = ws;
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'auth', key: session.key })));
  ws.addEventListener('message', (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (err) { return; }
    if (onEvent && e && e.type) onEvent(e);
  });
  ws.addEventListener('close', () => {
    if (live === ws) live = null;
    if (session.key) setTimeout(connectLive, 5000);
  });
}

// ---- routing -----------------------------------------------------------------------------

const pages = {
  search: pageSearch, memories: pageMemories, memory: pageMemory, sessions: pageSessions,
  session: pageSession, graph: pageGraph, reflection: pageReflection, ops: pageOps,
  signin: pageSignIn,
};
const current = { page: null };

async function route() {
  const hash = location.hash || '#/search';
  if (!hash.startsWith('#/')) return;
  const [path, query] = hash.slice(2).split('?');
  const [page, ...rest] = path.split('/');
  const params = new URLSearchParams(query || '');
  onEvent = null;
  if (!session.key && page !== 'signin') {
    location.hash = '#/signin';
    return;
  }
  current.page = pages[page] ? page : 'search';
  await (pages[page] || pageSearch)(params, rest.map(decodeURIComponent).join('/'));
  if (session.key) connectLive();
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement === document.body) { h1.tabIndex = -1; h1.focus(); }
}

document.getElementById('signout').addEventListener('click', () => {
  signOut();
  say('Signed out; the key is forgotten');
});
window.addEventListener('hashchange', route);

(async () => {
  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    try { await signIn(saved); } catch (err) { sessionStorage.removeItem(KEY); }
  }
  chrome();
  route();
})();
