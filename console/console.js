// tollgate's web console (API.md §8): the admin API of this server, driven from one page.
// Every URL is relative to the page (…/console/), so the console works under any
// --base-path. The admin access token lives in `session` below and nowhere else: never
// in Web Storage or a cookie; the secret is not kept at all.
'use strict';

const POLL_MS = 4000;
/** Seconds before the admin token's expiry at which the page asks for the secret again. */
const EXPIRY_MARGIN_S = 5;

const $ = (id) => document.getElementById(id);

/** The signed-in operator: client id, access token and its expiry (ms). Memory only. */
let session = null;
let pollTimer = null;
let currentView = 'sessions';
/** Scopes as the server lists them, for the add-user and add-query forms. */
let knownScopes = [];
/** Queries as last listed, by name, for the try form's parameter fields. */
let knownQueries = new Map();
/** What each table was last drawn from, so that polling redraws only on change. */
const drawn = new Map();

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** Unix seconds as local time, `YYYY-MM-DD HH:MM:SS`. */
function fmtTime(t) {
  if (typeof t !== 'number') return '—';
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds relative to now: `in 19 min`, `3 s ago`. */
function fmtRel(t) {
  if (typeof t !== 'number') return '';
  const s = Math.round(t - Date.now() / 1000);
  const a = Math.abs(s);
  const txt = a < 90 ? `${a} s` : a < 5400 ? `${Math.round(a / 60)} min` : `${Math.round(a / 3600)} h`;
  return s >= 0 ? `in ${txt}` : `${txt} ago`;
}

function timeCell(t, relative) {
  const text = el('span', {}, fmtTime(t));
  if (typeof t === 'number') {
    text.title = new Date(t * 1000).toISOString();
    if (relative) text.append(el('span', { class: 'rel' }, ` (${fmtRel(t)})`));
  }
  return el('td', { class: 'nowrap' }, text);
}

/** The message of an error answer: problem+json (RFC 9457), OAuth JSON, or RFC 6750 header. */
function errorMessage(status, body, headers) {
  if (body && typeof body === 'object') {
    if (body.error) {
      return body.error_description ? `${body.error}: ${body.error_description}` : body.error;
    }
    if (body.title || body.detail) {
      return [body.title, body.detail].filter(Boolean).join(': ');
    }
  }
  const challenge = headers && headers.get('WWW-Authenticate');
  if (challenge) {
    const desc = /error_description="([^"]*)"/.exec(challenge);
    const code = /error="([^"]*)"/.exec(challenge);
    if (code || desc) {
      return [code && code[1], desc && desc[1]].filter(Boolean).join(': ');
    }
  }
  return `HTTP ${status}`;
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** RFC 6749 §2.3.1: Basic credentials are form-url-encoded first. */
function formEncode(s) {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

function basicAuth(id, secret) {
  return 'Basic ' + btoa(`${formEncode(id)}:${formEncode(secret)}`);
}

/** POST token: the grant, as any client makes it. Answers {status, body}. */
async function postToken(clientId, secret, params) {
  const resp = await fetch('../token', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: basicAuth(clientId, secret),
    },
    body: new URLSearchParams(params),
    cache: 'no-store',
    credentials: 'omit',
  });
  return { status: resp.status, ok: resp.ok, body: await readBody(resp), headers: resp.headers };
}

function showError(id, err) {
  const box = $(id);
  if (!box) return;
  box.textContent = err ? (err instanceof Error ? err.message : String(err)) : '';
}

/** RFC 9457 `field`: mark the input the problem names and put the focus there. */
function markField(form, fields, err) {
  for (const i of $(form).querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  const id = err && err.body && fields[err.body.field];
  if (!id) return;
  const input = $(id);
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

function setText(id, text) {
  $(id).textContent = text;
}

// ---------- the admin API ----------

/** One admin API call with the operator's token. A 401 means the token is gone: sign in again. */
async function api(method, path, body) {
  if (!session) throw new ApiError(0, 'not signed in');
  if (Date.now() > session.expiresAt - EXPIRY_MARGIN_S * 1000) {
    expired();
    throw new ApiError(401, 'the admin token expired: sign in again');
  }
  const init = {
    method,
    headers: { Authorization: `Bearer ${session.access}`, Accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(`../admin/v1/${path}`, init);
  const data = await readBody(resp);
  if (resp.status === 401) {
    expired();
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, errorMessage(resp.status, data, resp.headers), data);
  }
  return { status: resp.status, body: data };
}

// ---------- sign-in ----------

async function signIn(event) {
  event.preventDefault();
  const clientId = $('signin-client').value.trim();
  const secretInput = $('signin-secret');
  showError('signin-error', '');
  if (!clientId || !secretInput.value) {
    showError('signin-error', 'Enter the client id and its secret.');
    return;
  }
  const button = event.submitter || $('signin-form').querySelector('button');
  button.disabled = true;
  try {
    const r = await postToken(clientId, secretInput.value, {
      grant_type: 'client_credentials',
      scope: 'admin',
    });
    if (!r.ok) {
      showError('signin-error', errorMessage(r.status, r.body, r.headers));
      return;
    }
    session = {
      clientId,
      access: r.body.access_token,
      expiresAt: Date.now() + (r.body.expires_in || 300) * 1000,
    };
    secretInput.value = '';
    session.sessionId = await ownSessionId(session.access);
    enterApp();
  } catch (e) {
    showError('signin-error', `The server did not answer: ${e.message}`);
  } finally {
    secretInput.value = '';
    button.disabled = false;
  }
}

/** The console's own session (GET api/v1/me), so that the page can mark it and end it on sign-out. */
async function ownSessionId(access) {
  try {
    const resp = await fetch('../api/v1/me', {
      headers: { Authorization: `Bearer ${access}` },
      cache: 'no-store',
      credentials: 'omit',
    });
    return resp.ok ? String((await resp.json()).session_id) : null;
  } catch {
    return null;
  }
}

function enterApp() {
  $('signin').hidden = true;
  $('signin-note').hidden = true;
  $('app').hidden = false;
  $('who').hidden = false;
  setText('who-name', session.clientId);
  showView(currentView, false);
  refreshAll();
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = setInterval(refreshAll, POLL_MS);
}

/** Forgets the token and everything the page drew from it. */
function leaveApp() {
  session = null;
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
  drawn.clear();
  for (const t of ['sessions', 'users', 'scopes', 'audit', 'queries', 'scripts']) {
    const body = document.querySelector(`#${t}-table tbody`);
    if (body) body.replaceChildren();
  }
  hideSecret();
  $('token-result').hidden = true;
  setText('token-json', '');
  $('try-token').value = '';
  $('try-result').replaceChildren();
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
}

function signOut() {
  // End the console's session on the server too (fire and forget: the page forgets the token anyway).
  if (session && session.sessionId) {
    api('DELETE', `sessions/${encodeURIComponent(session.sessionId)}`).catch(() => {});
  }
  leaveApp();
  $('signin-client').focus();
}

/** The admin token ran out: the secret is needed again (the page never kept it). */
function expired() {
  if (!session) return;
  const clientId = session.clientId;
  leaveApp();
  $('signin-client').value = clientId;
  const note = $('signin-note');
  note.textContent = 'The admin token expired. Enter the secret again to go on.';
  note.hidden = false;
  $('signin-secret').focus();
}

// ---------- views ----------

const loaders = {
  sessions: loadSessions,
  users: loadUsers,
  scopes: loadScopes,
  audit: loadAudit,
  queries: loadQueries,
  scripts: loadScripts,
  token: async () => {},
};

function showView(name, load = true) {
  currentView = name;
  for (const b of document.querySelectorAll('.tab')) {
    b.setAttribute('aria-pressed', String(b.dataset.view === name));
  }
  for (const v of document.querySelectorAll('.view')) {
    v.hidden = v.id !== `view-${name}`;
  }
  if (load && session) refreshView();
}

let refreshing = false;
async function refreshAll() {
  if (!session || refreshing) return;
  refreshing = true;
  try {
    await Promise.all([loadSeats(), refreshView()]);
    if (session) setText('updated', `Updated ${fmtTime(Date.now() / 1000)}; refreshes every ${POLL_MS / 1000} s.`);
  } finally {
    refreshing = false;
  }
}

async function refreshView() {
  const errorBox = `${currentView}-error`;
  try {
    if (!knownScopes.length && currentView !== 'scopes') await loadScopes();
    await loaders[currentView]();
    if (session && currentView !== 'token') showError(errorBox, '');
  } catch (e) {
    if (session) showError(errorBox, e);
  }
}

/** Redraws a table body only when its data changed, so focus and selection survive polling. */
function drawTable(name, items, row) {
  const key = JSON.stringify(items);
  if (drawn.get(name) === key) return false;
  drawn.set(name, key);
  const table = $(`${name}-table`);
  // Narrow screens show each row as a card; each cell carries its column's name.
  const labels = [...table.querySelectorAll('thead th')].map((th) =>
    th.querySelector('.visually-hidden') ? '' : th.textContent.trim());
  const rows = items.map(row);
  for (const tr of rows) {
    [...tr.children].forEach((td, i) => { td.dataset.label = labels[i] ?? ''; });
  }
  table.tBodies[0].replaceChildren(...rows);
  return true;
}

async function loadSeats() {
  try {
    const { body } = await api('GET', 'licences');
    const meter = $('seat-meter');
    meter.max = Math.max(body.seats, 1);
    meter.value = Math.min(body.held, meter.max);
    meter.high = Math.max(body.seats - 0.5, 0.5);
    meter.optimum = 0;
    setText('seat-text', `${body.held} of ${body.seats} seats held`);
    const input = $('seats-input');
    if (document.activeElement !== input) input.value = body.seats;
    showError('seats-error', '');
  } catch (e) {
    if (session) showError('seats-error', e);
  }
}

async function setSeats(event) {
  event.preventDefault();
  const n = Number($('seats-input').value);
  showError('seats-error', '');
  if (!Number.isInteger(n) || n < 0) {
    showError('seats-error', 'Seats: a whole number, 0 or more.');
    return;
  }
  try {
    await api('PUT', 'licences', { seats: n });
    await loadSeats();
  } catch (e) {
    showError('seats-error', e);
  }
}

// sessions

async function loadSessions() {
  const { body } = await api('GET', 'sessions?limit=500');
  const items = body.items || [];
  drawTable('sessions', items, (s) => el('tr', { 'data-session': s.id },
    el('td', { class: 'mono' }, String(s.id)),
    el('td', {}, s.client_id,
      session && String(s.id) === session.sessionId ? el('span', { class: 'rel' }, ' (this console)') : null),
    el('td', {}, s.scope),
    el('td', {}, s.seat ? el('span', { class: 'badge held' }, 'held') : '—'),
    timeCell(s.created_at, false),
    timeCell(s.expires_at, true),
    el('td', {}, el('button', {
      type: 'button', class: 'danger small', 'data-revoke': s.id,
      'aria-label': `Revoke session ${s.id} of ${s.client_id}`,
    }, 'Revoke')),
  ));
  $('sessions-empty').hidden = items.length > 0;
}

async function revokeSession(id) {
  const own = session && String(id) === session.sessionId;
  const question = own
    ? `Session ${id} is this console's own: revoking it signs you out. Revoke it?`
    : `Revoke session ${id}? Its tokens stop working at once.`;
  if (!window.confirm(question)) return;
  showError('sessions-error', '');
  try {
    await api('DELETE', `sessions/${encodeURIComponent(id)}`);
    drawn.delete('sessions');
    await Promise.all([loadSessions(), loadSeats()]);
  } catch (e) {
    showError('sessions-error', e);
  }
}

// users

async function loadUsers() {
  const { body } = await api('GET', 'users?limit=500');
  drawTable('users', body.items || [], (u) => el('tr', { 'data-user': u.client_id },
    el('td', { class: 'mono' }, u.client_id),
    el('td', {}, (u.scopes || []).join(' ') || '—'),
    el('td', {}, u.api_user ? 'API user' : 'ordinary'),
    el('td', {}, u.disabled ? el('span', { class: 'badge off' }, 'disabled') : 'enabled'),
    timeCell(u.created_at, false),
    el('td', {}, el('div', { class: 'buttons' },
      el('button', {
        type: 'button', class: 'secondary small',
        'data-toggle': u.client_id, 'data-disabled': String(!!u.disabled),
        'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.client_id}`,
      }, u.disabled ? 'Enable' : 'Disable'),
      el('button', {
        type: 'button', class: 'secondary small', 'data-secret': u.client_id,
        'aria-label': `New secret for ${u.client_id}`,
      }, 'New secret'),
    )),
  ));
}

function drawScopeChoices() {
  const box = $('user-scopes');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  if (!box.children.length) checked.add('view');
  box.replaceChildren(...knownScopes.map((s) => {
    const id = `user-scope-${s.name}`;
    return el('span', { class: 'check' },
      el('input', { type: 'checkbox', id, value: s.name, checked: checked.has(s.name) }),
      el('label', { for: id }, s.name + (s.licensed ? ' (licensed)' : '')));
  }));
  for (const id of ['query-scope', 'script-scope']) {
    const select = $(id);
    const chosen = select.value || 'view';
    select.replaceChildren(...knownScopes.map((s) => el('option', { value: s.name, selected: s.name === chosen }, s.name)));
  }
}

async function addUser(event) {
  event.preventDefault();
  showError('user-error', '');
  markField('user-form', {}, null);
  const clientId = $('user-name').value.trim();
  const scopes = [...$('user-scopes').querySelectorAll('input:checked')].map((i) => i.value);
  if (!clientId) {
    showError('user-error', 'Enter a client id.');
    $('user-name').focus();
    return;
  }
  try {
    const { body } = await api('POST', 'users', {
      client_id: clientId,
      scopes,
      api_user: $('user-api').checked,
    });
    $('user-name').value = '';
    showSecret(body.client_id, body.client_secret);
    drawn.delete('users');
    await loadUsers();
  } catch (e) {
    showError('user-error', e);
    markField('user-form', { client_id: 'user-name', api_user: 'user-api' }, e);
  }
}

async function toggleUser(clientId, disabled) {
  const action = disabled ? 'enable' : 'disable';
  if (!disabled && !window.confirm(`Disable ${clientId}? Its sessions end at once.`)) return;
  showError('users-error', '');
  try {
    await api('POST', `users/${encodeURIComponent(clientId)}/${action}`);
    drawn.delete('users');
    await Promise.all([loadUsers(), loadSeats()]);
  } catch (e) {
    showError('users-error', e);
  }
}

async function newSecret(clientId) {
  if (!window.confirm(`Give ${clientId} a new secret? The old one stops working at once.`)) return;
  showError('users-error', '');
  try {
    const { body } = await api('POST', `users/${encodeURIComponent(clientId)}/secret`);
    showSecret(body.client_id, body.client_secret);
  } catch (e) {
    showError('users-error', e);
  }
}

function showSecret(clientId, secret) {
  setText('secret-client', clientId);
  $('secret-value').value = secret;
  setText('secret-copied', '');
  $('secret-box').hidden = false;
  $('secret-value').focus();
  $('secret-value').select();
}

function hideSecret() {
  $('secret-value').value = '';
  setText('secret-client', '');
  $('secret-box').hidden = true;
}

async function copyText(text, statusId) {
  try {
    await navigator.clipboard.writeText(text);
    setText(statusId, 'Copied.');
  } catch {
    setText(statusId, 'Copying was refused by the browser: select the text and copy it.');
  }
}

// scopes

async function loadScopes() {
  const { body } = await api('GET', 'scopes?limit=500');
  knownScopes = body.items || [];
  drawScopeChoices();
  drawTable('scopes', knownScopes, (s) => el('tr', {},
    el('td', { class: 'mono' }, s.name),
    el('td', {}, s.licensed ? el('span', { class: 'badge held' }, 'licensed') : 'no'),
    el('td', {}, s.description || ''),
  ));
}

// audit

let auditFilter = { client: '', since: '1d' };

async function loadAudit() {
  const q = new URLSearchParams({ since: auditFilter.since, limit: '200' });
  if (auditFilter.client) q.set('client', auditFilter.client);
  const { body } = await api('GET', `audit?${q}`);
  const items = body.items || [];
  setText('audit-count', `${items.length} of ${body.total ?? items.length} events, newest first` +
    (auditFilter.client ? `, client ${auditFilter.client}` : ''));
  drawTable('audit', items, (a) => el('tr', {},
    timeCell(a.at, false),
    el('td', { class: 'mono' }, a.client_id ?? '—'),
    el('td', {}, a.event),
    el('td', {}, el('span', { class: `badge ${a.outcome === 'ok' ? 'ok' : 'off'}` }, a.outcome)),
    el('td', { class: 'mono' }, a.address ?? ''),
    el('td', {}, a.detail ?? ''),
  ));
}

function filterAudit(event) {
  event.preventDefault();
  auditFilter = { client: $('audit-client').value.trim(), since: $('audit-since').value };
  drawn.delete('audit');
  refreshView();
}

// queries

async function loadQueries() {
  const { body } = await api('GET', 'queries?limit=500');
  const items = body.items || [];
  knownQueries = new Map(items.map((q) => [q.name, q]));
  if (drawTable('queries', items, (q) => el('tr', { 'data-query': q.name },
    el('td', { class: 'mono' }, q.name),
    el('td', {}, q.scope),
    el('td', {}, el('code', { class: 'sql' }, q.sql)),
    el('td', {}, q.description || ''),
    el('td', {}, el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'secondary small', 'data-try': q.name, 'aria-label': `Try ${q.name}` }, 'Try'),
      el('button', { type: 'button', class: 'secondary small', 'data-edit': q.name, 'aria-label': `Edit ${q.name}` }, 'Edit'),
      el('button', { type: 'button', class: 'danger small', 'data-remove': q.name, 'aria-label': `Remove ${q.name}` }, 'Remove'),
    )),
  ))) {
    drawTryChoices();
  }
}

function drawTryChoices() {
  const select = $('try-name');
  const chosen = select.value;
  select.replaceChildren(...[...knownQueries.keys()].map((n) => el('option', { value: n, selected: n === chosen }, n)));
  drawTryParams();
}

/** One field per `?N` the query's SQL uses (qp1 … qp9, API.md §7). */
function drawTryParams() {
  const q = knownQueries.get($('try-name').value);
  const box = $('try-params');
  const old = new Map([...box.querySelectorAll('input')].map((i) => [i.name, i.value]));
  let n = 0;
  if (q) for (const m of q.sql.matchAll(/\?([1-9])/g)) n = Math.max(n, Number(m[1]));
  const fields = [];
  for (let i = 1; i <= n; i++) {
    const id = `try-qp${i}`;
    fields.push(el('div', { class: 'field' },
      el('label', { for: id }, `Parameter ?${i} (qp${i})`),
      el('input', { id, name: `qp${i}`, autocomplete: 'off', value: old.get(`qp${i}`) ?? '' })));
  }
  box.replaceChildren(...fields);
}

async function saveQuery(event) {
  event.preventDefault();
  showError('query-error', '');
  markField('query-form', {}, null);
  setText('query-ok', '');
  const name = $('query-name').value.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    showError('query-error', 'Name: 1–64 of A–Z, a–z, 0–9, _ and -.');
    $('query-name').focus();
    return;
  }
  try {
    const { status } = await api('PUT', `queries/${encodeURIComponent(name)}`, {
      sql: $('query-sql').value,
      scope: $('query-scope').value,
      description: $('query-description').value,
    });
    setText('query-ok', `${status === 201 ? 'Added' : 'Replaced'} ${name}.`);
    drawn.delete('queries');
    await loadQueries();
    $('try-name').value = name;
    drawTryParams();
  } catch (e) {
    showError('query-error', e);
    markField('query-form', { sql: 'query-sql', scope: 'query-scope', description: 'query-description', name: 'query-name' }, e);
  }
}

function editQuery(name) {
  const q = knownQueries.get(name);
  if (!q) return;
  $('query-name').value = q.name;
  $('query-sql').value = q.sql;
  $('query-scope').value = q.scope;
  $('query-description').value = q.description || '';
  $('query-name').focus();
}

async function removeQuery(name) {
  if (!window.confirm(`Remove the query ${name}?`)) return;
  showError('queries-error', '');
  try {
    await api('DELETE', `queries/${encodeURIComponent(name)}`);
    drawn.delete('queries');
    await loadQueries();
  } catch (e) {
    showError('queries-error', e);
  }
}

async function tryQuery(event) {
  event.preventDefault();
  showError('try-error', '');
  $('try-result').replaceChildren();
  const name = $('try-name').value;
  const token = $('try-token').value.trim();
  if (!name) {
    showError('try-error', 'There is no query to try yet.');
    return;
  }
  if (!token) {
    showError('try-error', 'Paste an access token with the query’s scope, or get one under “Get a token”.');
    $('try-token').focus();
    return;
  }
  const q = new URLSearchParams();
  for (const i of $('try-params').querySelectorAll('input')) q.set(i.name, i.value);
  q.set('pagesize', $('try-pagesize').value || '50');
  const url = `../api/v1/custom/${encodeURIComponent(name)}?${q}`;
  setText('try-url', `GET ${new URL(url, document.baseURI).href}`);
  try {
    const resp = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
    const body = await readBody(resp);
    if (!resp.ok) {
      showError('try-error', `${resp.status}: ${errorMessage(resp.status, body, resp.headers)}`);
      return;
    }
    const set = (body.resultSets || [])[0] || { columns: [], rows: [] };
    const table = el('table', { class: 'result' },
      el('caption', {}, `${set.rows.length} row${set.rows.length === 1 ? '' : 's'} (page ${body.pageno}, size ${body.pagesize})`),
      el('thead', {}, el('tr', {}, ...set.columns.map((c) => el('th', { scope: 'col', title: c.Type }, c.Name)))),
      el('tbody', {}, ...set.rows.map((r) => el('tr', {}, ...r.map((v) => el('td', {}, v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v)))))));
    $('try-result').replaceChildren(table);
    table.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    showError('try-error', e);
  }
}

// get a token

function shellQuote(s) {
  return /^[A-Za-z0-9_.:\/=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function curlFor(clientId, params) {
  const lines = [`curl -s -u ${shellQuote(clientId)}`];
  for (const [k, v] of Object.entries(params)) lines.push(`-d ${shellQuote(`${k}=${v}`)}`);
  lines.push(shellQuote(new URL('../token', document.baseURI).href));
  return lines.join(' \\\n     ');
}

async function getToken(event) {
  event.preventDefault();
  showError('token-error', '');
  const clientId = $('token-client').value.trim();
  const secret = $('token-secret').value;
  const grant = $('token-grant').value;
  if (!clientId || !secret) {
    showError('token-error', 'Enter a client id and its secret.');
    return;
  }
  const params = { grant_type: grant };
  if (grant === 'refresh_token') {
    params.refresh_token = $('token-refresh').value.trim();
    if (!params.refresh_token) {
      showError('token-error', 'Enter the refresh token.');
      return;
    }
  }
  const scope = $('token-scope').value.trim();
  if (scope) params.scope = scope;
  try {
    const r = await postToken(clientId, secret, params);
    $('token-result').hidden = false;
    const badge = $('token-status');
    badge.textContent = `HTTP ${r.status}`;
    badge.className = `badge ${r.ok ? 'ok' : 'off'}`;
    setText('token-json', typeof r.body === 'string' ? r.body : JSON.stringify(r.body, null, 2));
    setText('token-curl', curlFor(clientId, params));
    setText('token-copied', '');
    if (!r.ok) {
      showError('token-error', errorMessage(r.status, r.body, r.headers));
      return;
    }
    if (r.body.refresh_token) $('token-refresh').value = r.body.refresh_token;
    if (!$('try-token').value) $('try-token').value = r.body.access_token;
    loadSeats();
  } catch (e) {
    showError('token-error', `The server did not answer: ${e.message}`);
  }
}

// scripts (API.md §11)

/** Handlers as last listed, by name, for the edit button. */
let knownScripts = new Map();

async function loadScripts() {
  const { body } = await api('GET', 'scripts?limit=500');
  const items = body.items || [];
  knownScripts = new Map(items.map((s) => [s.name, s]));
  drawTable('scripts', items, (s) => el('tr', { 'data-script': s.name },
    el('td', { class: 'mono' }, s.name),
    el('td', {}, s.method),
    el('td', {}, s.scope),
    el('td', {}, s.writes ? 'yes' : 'no'),
    el('td', {}, s.description || ''),
    el('td', {}, el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'secondary small', 'data-script-edit': s.name, 'aria-label': `Edit ${s.name}` }, 'Edit'),
      el('button', { type: 'button', class: 'danger small', 'data-script-remove': s.name, 'aria-label': `Remove ${s.name}` }, 'Remove'),
    )),
  ));
}

async function saveScript(event) {
  event.preventDefault();
  showError('script-error', '');
  markField('script-form', {}, null);
  setText('script-ok', '');
  const name = $('script-name').value.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    showError('script-error', 'Name: 1–64 of A–Z, a–z, 0–9, _ and -.');
    $('script-name').focus();
    return;
  }
  try {
    const { status } = await api('PUT', `scripts/${encodeURIComponent(name)}`, {
      source: $('script-source').value,
      method: $('script-method').value,
      scope: $('script-scope').value,
      writes: $('script-writes').checked,
      description: $('script-description').value,
    });
    setText('script-ok', `${status === 201 ? 'Added' : 'Replaced'} ${name}.`);
    drawn.delete('scripts');
    await loadScripts();
  } catch (e) {
    showError('script-error', e);
    markField('script-form', { source: 'script-source', method: 'script-method', scope: 'script-scope', description: 'script-description', writes: 'script-writes', name: 'script-name' }, e);
  }
}

async function editScript(name) {
  showError('scripts-error', '');
  try {
    const { body } = await api('GET', `scripts/${encodeURIComponent(name)}`);
    $('script-name').value = body.name;
    $('script-method').value = body.method;
    $('script-scope').value = body.scope;
    $('script-writes').checked = !!body.writes;
    $('script-description').value = body.description || '';
    $('script-source').value = body.source;
    $('script-name').focus();
  } catch (e) {
    showError('scripts-error', e);
  }
}

async function removeScript(name) {
  if (!knownScripts.has(name) || !window.confirm(`Remove the handler ${name}?`)) return;
  showError('scripts-error', '');
  try {
    await api('DELETE', `scripts/${encodeURIComponent(name)}`);
    drawn.delete('scripts');
    await loadScripts();
  } catch (e) {
    showError('scripts-error', e);
  }
}

// ---------- wiring ----------

function onClick(selector, handler) {
  document.addEventListener('click', (e) => {
    const target = e.target.closest(selector);
    if (target) handler(target, e);
  });
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('seats-form').addEventListener('submit', setSeats);
  $('user-form').addEventListener('submit', addUser);
  $('audit-form').addEventListener('submit', filterAudit);
  $('query-form').addEventListener('submit', saveQuery);
  $('script-form').addEventListener('submit', saveScript);
  $('try-form').addEventListener('submit', tryQuery);
  $('try-name').addEventListener('change', drawTryParams);
  $('token-form').addEventListener('submit', getToken);
  $('token-grant').addEventListener('change', () => {
    $('token-refresh-field').hidden = $('token-grant').value !== 'refresh_token';
  });
  $('secret-copy').addEventListener('click', () => copyText($('secret-value').value, 'secret-copied'));
  $('secret-dismiss').addEventListener('click', hideSecret);
  $('token-curl-copy').addEventListener('click', () => copyText($('token-curl').textContent, 'token-copied'));
  $('token-use').addEventListener('click', () => {
    try {
      $('try-token').value = JSON.parse($('token-json').textContent).access_token || '';
    } catch {
      $('try-token').value = '';
    }
    showView('queries');
    $('try-token').focus();
  });
  onClick('.tab', (b) => showView(b.dataset.view));
  onClick('[data-revoke]', (b) => revokeSession(b.dataset.revoke));
  onClick('[data-toggle]', (b) => toggleUser(b.dataset.toggle, b.dataset.disabled === 'true'));
  onClick('[data-secret]', (b) => newSecret(b.dataset.secret));
  onClick('[data-try]', (b) => {
    $('try-name').value = b.dataset.try;
    drawTryParams();
    const first = $('try-params').querySelector('input') || $('try-token');
    first.focus();
  });
  onClick('[data-edit]', (b) => editQuery(b.dataset.edit));
  onClick('[data-remove]', (b) => removeQuery(b.dataset.remove));
  onClick('[data-script-edit]', (b) => editScript(b.dataset.scriptEdit));
  onClick('[data-script-remove]', (b) => removeScript(b.dataset.scriptRemove));
  $('signin-client').focus();
});
