// Moderator console: live alerts of every room, evidence playback, decisions, anchor record.
// Plain JavaScript, no libraries. Talks only to its own server (docs/CONSOLE.md):
//   GET /console/session (sign-in; the HttpOnly cookie then authenticates everything else)
//   ws  /v1/alerts?include=rooms,decisions&since=...  (alerts, room events, decisions; decisions are sent here)
//   GET /v1/rooms, /v1/evidence/<id>, /v1/evidence/<id>/clip, /v1/anchors, /v1/decisions.jsonl
'use strict';

const CATEGORIES = [
  'absolute_claim', 'medical_claim', 'cosmetic_efficacy', 'precious_metal_claim', 'gem_authenticity_claim',
  'collectible_investment', 'official_endorsement', 'false_price', 'private_transaction', 'superstition',
];
const INSPECTION_CATEGORIES = new Set(['precious_metal_claim', 'gem_authenticity_claim']);
const DECISION_NAMES = {confirm: 'confirmed violation', dismiss: 'dismissed (false alert)', inspect: 'sent to inspection'};
const ROW_HEIGHT_PX = 58; // fixed row height: the list renders only the rows in view
const OVERSCAN_ROWS = 8;
const MAX_RECONNECT_DELAY_MS = 10000;
const ROOMS_REFRESH_MS = 1000;

const state = {
  alerts: [],             // every alert received, oldest first (alert ids sort by time)
  byId: new Map(),        // alert_id -> alert
  decisions: new Map(),   // evidence_id -> [decision, ...] oldest first; the last is in force
  decisionIds: new Set(),
  rooms: new Map(),       // live rooms: room_id -> info from /v1/rooms and room events
  seenRooms: new Set(),
  seenAnchors: new Set(),
  view: [],               // alerts passing the filters, oldest first (shown newest first)
  filters: {room: '', anchor: '', category: '', severity: '', status: ''},
  selected: null,
  lastAlertId: null,
  ws: null,
  reconnectDelayMs: 500,
  signedIn: false,
  renderQueued: false,
  requestSeq: 0,
  roomsTimer: null,
};
// Figures for the browser test and for anyone profiling the page.
window.consoleStats = {alerts: 0, visible: 0, lastRenderMs: 0, lastFilterMs: 0, renders: 0, domRows: 0};

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// ---- sign-in ---------------------------------------------------------------------------------

async function checkSession() {
  const response = await fetch('/console/session', {credentials: 'same-origin', cache: 'no-store'});
  if (response.ok) {
    signedIn(await response.json());
  } else {
    showSignIn('');
  }
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token');
  const token = input.value.trim();
  input.value = '';  // the token is not kept anywhere in the page
  if (!token) return;
  let response;
  try {
    response = await fetch('/console/session', {
      headers: {Authorization: 'Bearer ' + token}, credentials: 'same-origin', cache: 'no-store',
    });
  } catch (err) {
    showSignIn('Server unreachable: ' + err);
    return;
  }
  if (!response.ok) {
    showSignIn(`Sign-in refused (${response.status}): ${(await response.text()).trim()}`);
    return;
  }
  signedIn(await response.json());
}

function showSignIn(message) {
  state.signedIn = false;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('token').focus();
}

function signedIn(who) {
  state.signedIn = true;
  $('sign-in').hidden = true;
  $('sign-in-error').textContent = '';
  $('who').textContent = `${who.identity} (${who.role})`;
  $('sign-out').hidden = false;
  connect();
  refreshRooms();
}

async function signOut() {
  await fetch('/console/logout', {method: 'POST', credentials: 'same-origin'});
  if (state.ws) state.ws.close(1000, 'signed out');
  state.ws = null;
  showSignIn('Signed out.');
}

// ---- the alerts socket -------------------------------------------------------------------------

function connect() {
  if (state.ws && state.ws.readyState <= WebSocket.OPEN) return;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = encodeURIComponent(state.lastAlertId || '0');  // since=0: every alert still held
  const ws = new WebSocket(`${scheme}//${location.host}/v1/alerts?include=rooms,decisions&since=${since}`);
  state.ws = ws;
  ws.onopen = () => {
    state.reconnectDelayMs = 500;
    setConn('live', 'on');
    refreshRooms();
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    setConn(`offline (${event.code})`, 'off');
    if (state.signedIn) setTimeout(reconnect, state.reconnectDelayMs);
    state.reconnectDelayMs = Math.min(state.reconnectDelayMs * 2, MAX_RECONNECT_DELAY_MS);
  };
}

async function reconnect() {
  // a refused handshake looks like any drop to a WebSocket: ask whether we are still signed in
  try {
    const response = await fetch('/console/session', {credentials: 'same-origin', cache: 'no-store'});
    if (response.status === 401) {
      showSignIn('Your session ended; sign in again.');
      return;
    }
  } catch (err) { /* server down: keep trying */ }
  if (state.signedIn) connect();
}

function setConn(text, cls) {
  const node = $('conn');
  node.textContent = text;
  node.className = 'conn ' + cls;
}

function onMessage(message) {
  switch (message.type) {
    case 'alert': addAlerts([message]); break;
    case 'decision': addDecision(message); break;
    case 'room': roomEvent(message); break;
    case 'decision_recorded': decisionStatus(`Recorded (decision ${message.decision_id.slice(0, 8)}…).`, 'ok'); break;
    case 'error': decisionStatus(`${message.code}: ${message.message}`, 'error'); break;
    default: break;
  }
}

// ---- alerts and filters ---------------------------------------------------------------------------

function addAlerts(alerts) {
  const started = performance.now();
  let added = 0;
  for (const alert of alerts) {
    if (state.byId.has(alert.alert_id)) continue;
    delete alert.type;
    state.byId.set(alert.alert_id, alert);
    const last = state.alerts[state.alerts.length - 1];
    if (!last || last.alert_id < alert.alert_id) {
      state.alerts.push(alert);
      if (matches(alert)) state.view.push(alert);
    } else {  // out of order (a replay after a reconnect): rebuild the view once
      state.alerts.push(alert);
      state.alerts.sort((a, b) => (a.alert_id < b.alert_id ? -1 : 1));
      state.view = null;
    }
    if (!state.lastAlertId || alert.alert_id > state.lastAlertId) state.lastAlertId = alert.alert_id;
    noteOption(state.seenRooms, 'f-room', alert.room_id);
    noteOption(state.seenAnchors, 'f-anchor', alert.anchor_id);
    added += 1;
  }
  if (!added) return;
  if (state.view === null) applyFilters();
  window.consoleStats.alerts = state.alerts.length;
  window.consoleStats.lastAddMs = performance.now() - started;
  scheduleRoomsRefresh();
  scheduleRender();
}

function noteOption(seen, selectId, value) {
  if (!value || seen.has(value)) return;
  seen.add(value);
  $(selectId).append(new Option(value, value));
}

function decisionInForce(alert) {
  const list = alert.evidence_id ? state.decisions.get(alert.evidence_id) : null;
  return list && list.length ? list[list.length - 1] : null;
}

function matches(alert) {
  const f = state.filters;
  if (f.room && alert.room_id !== f.room) return false;
  if (f.anchor && alert.anchor_id !== f.anchor) return false;
  if (f.category && alert.category !== f.category) return false;
  if (f.severity && alert.severity !== f.severity) return false;
  if (f.status) {
    const decision = decisionInForce(alert);
    if (f.status === 'undecided' ? decision !== null : (!decision || decision.decision !== f.status)) return false;
  }
  return true;
}

function applyFilters() {
  const started = performance.now();
  state.view = state.alerts.filter(matches);
  window.consoleStats.lastFilterMs = performance.now() - started;
  $('alert-list').scrollTop = 0;
  scheduleRender();
}

function onFilterChange() {
  state.filters = {
    room: $('f-room').value, anchor: $('f-anchor').value, category: $('f-category').value,
    severity: $('f-severity').value, status: $('f-status').value,
  };
  applyFilters();
}

// ---- the virtual list: only the rows in view are in the DOM ------------------------------------------

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    renderList();
  });
}

function renderList() {
  const started = performance.now();
  const list = $('alert-list');
  const view = state.view;
  const total = view.length;
  $('alert-spacer').style.height = `${total * ROW_HEIGHT_PX}px`;
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT_PX) - OVERSCAN_ROWS);
  const last = Math.min(total, Math.ceil((list.scrollTop + list.clientHeight) / ROW_HEIGHT_PX) + OVERSCAN_ROWS);
  for (const row of list.querySelectorAll('.row')) row.remove();
  const fragment = document.createDocumentFragment();
  for (let i = first; i < last; i += 1) {
    const alert = view[total - 1 - i];  // newest first
    fragment.append(alertRow(alert, i));
  }
  list.append(fragment);
  const count = $('alert-count');
  count.textContent = total === state.alerts.length ? `${total} alerts` : `${total} of ${state.alerts.length} alerts`;
  count.dataset.count = String(total);
  const stats = window.consoleStats;
  stats.visible = total;
  stats.domRows = last - first;
  stats.renders += 1;
  stats.lastRenderMs = performance.now() - started;
}

function alertRow(alert, index) {
  const row = el('div', `row sev-${alert.severity}`);
  row.style.top = `${index * ROW_HEIGHT_PX}px`;
  row.dataset.alertId = alert.alert_id;
  if (state.selected === alert.alert_id) row.classList.add('selected');
  const head = el('div', 'row-head');
  head.append(
    el('span', 'time', timeOf(alert.emitted_at)),
    el('span', `badge sev ${alert.severity}`, alert.severity),
    el('span', 'cat', alert.category),
    el('span', 'room', `${alert.room_id || '-'} · ${alert.anchor_id || '-'}`),
  );
  const decision = decisionInForce(alert);
  if (decision) head.append(el('span', `badge dec ${decision.decision}`, DECISION_NAMES[decision.decision]));
  const text = el('div', 'row-text');
  highlighted(text, alert.text, alert.matched);
  row.append(head, text);
  row.addEventListener('click', () => select(alert.alert_id));
  return row;
}

function timeOf(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], {hour12: false});
}

// The utterance with the matched phrase marked (text nodes only: nothing is parsed as HTML).
function highlighted(node, text, phrase) {
  const at = phrase ? text.indexOf(phrase) : -1;
  if (at < 0) {
    node.append(document.createTextNode(text));
    return false;
  }
  node.append(document.createTextNode(text.slice(0, at)), el('mark', null, phrase),
    document.createTextNode(text.slice(at + phrase.length)));
  return true;
}

// ---- detail: fields, evidence, decisions ---------------------------------------------------------------

function select(alertId) {
  state.selected = alertId;
  scheduleRender();
  renderDetail();
}

function renderDetail() {
  const alert = state.byId.get(state.selected);
  const detail = $('detail');
  detail.replaceChildren();
  if (!alert) {
    detail.append(el('p', 'muted', 'Select an alert.'));
    return;
  }
  detail.append($('detail-template').content.cloneNode(true));
  detail.dataset.alertId = alert.alert_id;
  detail.querySelector('.d-title').textContent = `${alert.severity} · ${alert.category}`;
  const utterance = detail.querySelector('.d-utterance');
  if (!highlighted(utterance, alert.text, alert.matched)) {
    utterance.append(el('span', 'muted', ` (heard as “${alert.matched}”)`));
  }
  const fields = detail.querySelector('.d-fields');
  const rows = [
    ['Reminder sent', alert.reminder], ['Rule', alert.rule_id], ['Regulation', alert.regulation],
    ['Source', alert.source], ['Confidence', Number(alert.confidence).toFixed(2)],
    ['Matched', alert.matched], ['Room · anchor', `${alert.room_id || '-'} · ${alert.anchor_id || '-'}`],
    ['Stream time', alert.start == null ? '-' : `${alert.start.toFixed(1)}–${alert.end.toFixed(1)} s`],
    ['Emitted', alert.emitted_at], ['Versions', `lexicon ${alert.lexicon_version || '-'}, model ${alert.model_version || '-'}`],
    ['Evidence id', alert.evidence_id || 'not archived'],
  ];
  for (const [name, value] of rows) fields.append(el('dt', null, name), el('dd', null, value));
  const canDecide = Boolean(alert.evidence_id);
  detail.querySelector('.play-clip').disabled = !canDecide;
  for (const button of detail.querySelectorAll('.decide button')) button.disabled = !canDecide;
  detail.querySelector('.decide-inspect').hidden = !INSPECTION_CATEGORIES.has(alert.category);
  detail.querySelector('.play-clip').addEventListener('click', () => playClip(alert));
  detail.querySelector('.decide-confirm').addEventListener('click', () => decide(alert, 'confirm'));
  detail.querySelector('.decide-dismiss').addEventListener('click', () => decide(alert, 'dismiss'));
  detail.querySelector('.decide-inspect').addEventListener('click', () => decide(alert, 'inspect'));
  renderHistory(alert);
  if (canDecide) loadEvidence(alert);
}

async function loadEvidence(alert) {
  const detail = $('detail');
  const proof = detail.querySelector('.proof');
  proof.textContent = 'Checking the archive…';
  const response = await fetch(`/v1/evidence/${alert.evidence_id}`, {credentials: 'same-origin'});
  if (detail.dataset.alertId !== alert.alert_id) return;
  if (!response.ok) {
    proof.textContent = `Archive: ${response.status} ${(await response.text()).trim()}`;
    return;
  }
  const record = await response.json();
  const p = record.proof;
  proof.textContent = p.covered_by_signed_checkpoint
    ? `Archived: record #${p.leaf_index} of ${p.tree_size}, covered by the checkpoint signed ${p.checkpoint_time} `
      + `(inclusion proof checked). Record SHA-256 ${p.record_sha256.slice(0, 16)}…`
    : `Archived as record #${p.leaf_index} but NOT covered by a signed checkpoint`;
  proof.className = 'proof ' + (p.covered_by_signed_checkpoint ? 'ok' : 'error');
  proof.dataset.covered = String(p.covered_by_signed_checkpoint);
  detail.querySelector('.transcript').textContent = record.transcript || '(purged)';
  const status = detail.querySelector('.clip-status');
  status.textContent = record.clip ? `Clip: ${record.clip.duration.toFixed(1)} s from ${record.clip.start.toFixed(1)} s of the stream, FLAC ${Math.round(record.clip.size / 1024)} kB` : 'No clip stored.';
  for (const decision of record.decisions || []) addDecision({type: 'decision', ...decision});
}

async function playClip(alert) {
  const detail = $('detail');
  const audio = detail.querySelector('.clip-audio');
  const status = detail.querySelector('.clip-status');
  status.textContent = 'Loading clip…';
  const response = await fetch(`/v1/evidence/${alert.evidence_id}/clip`, {credentials: 'same-origin'});
  if (!response.ok) {
    status.textContent = `Clip unavailable: ${response.status} ${(await response.text()).trim()}`;
    return;
  }
  const blob = await response.blob();
  if (audio.dataset.url) URL.revokeObjectURL(audio.dataset.url);
  audio.dataset.url = URL.createObjectURL(blob);
  audio.src = audio.dataset.url;
  try {
    await audio.play();
    status.textContent = `Playing the archived clip (${Math.round(blob.size / 1024)} kB FLAC).`;
  } catch (err) {
    status.textContent = `Loaded; press play (${err.name}).`;
  }
}

function decide(alert, decision) {
  const detail = $('detail');
  const reason = detail.querySelector('.dismiss-reason').value.trim();
  if (decision === 'dismiss' && !reason) {
    decisionStatus('Give a reason to dismiss.', 'error');
    detail.querySelector('.dismiss-reason').focus();
    return;
  }
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    decisionStatus('Not connected; try again in a moment.', 'error');
    return;
  }
  state.requestSeq += 1;
  state.ws.send(JSON.stringify({
    type: 'decision', evidence_id: alert.evidence_id, decision, reason: reason || null,
    request_id: `r${state.requestSeq}`,
  }));
  decisionStatus('Sending…', '');
}

function decisionStatus(text, cls) {
  const node = document.querySelector('#detail .decision-status');
  if (!node) return;
  node.textContent = text;
  node.className = 'decision-status ' + cls;
}

function addDecision(decision) {
  const id = decision.decision_id || `${decision.evidence_id}:${decision.seq}`;
  if (state.decisionIds.has(id)) return;
  state.decisionIds.add(id);
  const list = state.decisions.get(decision.evidence_id) || [];
  list.push(decision);
  list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  state.decisions.set(decision.evidence_id, list);
  if (state.filters.status) applyFilters(); else scheduleRender();
  const selected = state.byId.get(state.selected);
  if (selected && selected.evidence_id === decision.evidence_id) renderHistory(selected);
}

function renderHistory(alert) {
  const history = document.querySelector('#detail .decision-history');
  if (!history) return;
  history.replaceChildren();
  for (const d of state.decisions.get(alert.evidence_id) || []) {
    const item = el('li', `dec ${d.decision}`);
    item.append(el('strong', null, DECISION_NAMES[d.decision] || d.decision), ` by ${d.by} at ${d.at}`);
    if (d.reason) item.append(el('span', 'reason', ` — ${d.reason}`));
    history.append(item);
  }
}

// ---- rooms strip ------------------------------------------------------------------------------------------

// Rooms' alert counts come from the server (the session's count); refreshed at most once a second.
function scheduleRoomsRefresh() {
  if (state.roomsTimer) return;
  state.roomsTimer = setTimeout(() => {
    state.roomsTimer = null;
    refreshRooms();
  }, ROOMS_REFRESH_MS);
}

async function refreshRooms() {
  const response = await fetch('/v1/rooms', {credentials: 'same-origin', cache: 'no-store'});
  if (!response.ok) return;
  state.rooms = new Map((await response.json()).rooms.map((room) => [room.room_id, room]));
  renderRooms();
}

function roomEvent(event) {
  if (event.event === 'open') state.rooms.set(event.room_id, event);
  else state.rooms.delete(event.room_id);
  renderRooms();
}

function renderRooms() {
  const strip = $('rooms');
  strip.replaceChildren();
  if (!state.rooms.size) {
    strip.append(el('span', 'muted', 'none'));
    return;
  }
  for (const room of [...state.rooms.values()].sort((a, b) => (a.room_id < b.room_id ? -1 : 1))) {
    const chip = el('button', 'chip' + (room.connected === false ? ' grace' : ''));
    chip.type = 'button';
    chip.dataset.roomId = room.room_id;
    chip.title = `anchor ${room.anchor_id || '-'}, live since ${room.started_at}`;
    chip.append(el('span', 'dot'), el('span', null, room.room_id), el('span', 'count', room.alerts || 0));
    chip.addEventListener('click', () => {
      noteOption(state.seenRooms, 'f-room', room.room_id);
      $('f-room').value = $('f-room').value === room.room_id ? '' : room.room_id;
      onFilterChange();
    });
    strip.append(chip);
  }
}

// ---- anchor record ------------------------------------------------------------------------------------------

async function loadAnchors() {
  const bucket = $('a-bucket').value;
  const response = await fetch(`/v1/anchors?bucket=${bucket}`, {credentials: 'same-origin', cache: 'no-store'});
  const body = $('anchor-table').querySelector('tbody');
  body.replaceChildren();
  if (!response.ok) {
    const row = body.insertRow();
    row.insertCell().textContent = `${response.status} ${(await response.text()).trim()}`;
    return;
  }
  const data = await response.json();
  for (const anchor of data.anchors) {
    const row = body.insertRow();
    row.dataset.anchorId = anchor.anchor_id || '';
    const share = anchor.confirmed_share_of_decided;
    for (const value of [anchor.anchor_id || '(none)', anchor.alerts, anchor.confirmed, anchor.dismissed,
      anchor.inspected, anchor.undecided, share === null ? '-' : `${Math.round(share * 100)} %`]) {
      row.insertCell().textContent = value;
    }
    row.addEventListener('click', () => {
      for (const other of body.rows) other.classList.remove('selected');
      row.classList.add('selected');
      drawChart(anchor, data.bucket);
    });
  }
  if (body.rows.length) body.rows[0].click();
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// Bars per bucket: alerts (grey), confirmed violations (red) in front; dismissed as a blue tick.
function drawChart(anchor, bucket) {
  const box = $('anchor-chart');
  box.replaceChildren(el('h3', null, `${anchor.anchor_id || '(no anchor)'}: alerts and confirmed violations per ${bucket}`));
  const series = anchor.series;
  const width = 640;
  const height = 260;
  const pad = {left: 40, right: 10, top: 10, bottom: 50};
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...series.map((s) => s.alerts));
  const chart = svg('svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `alerts and confirmed violations of ${anchor.anchor_id}`});
  const slot = innerW / Math.max(series.length, 1);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const y = (value) => pad.top + innerH - (value / max) * innerH;
  for (let tick = 0; tick <= 4; tick += 1) {
    const value = Math.round((max * tick) / 4);
    chart.append(svg('line', {x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: 'grid'}),
      svg('text', {x: pad.left - 6, y: y(value) + 4, 'text-anchor': 'end', class: 'axis'}, value));
  }
  series.forEach((point, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    chart.append(svg('rect', {x, y: y(point.alerts), width: barW, height: innerH + pad.top - y(point.alerts), class: 'bar-alerts'},));
    chart.lastChild.append(svg('title', {}, `${point.bucket}: ${point.alerts} alerts`));
    if (point.confirmed) {
      chart.append(svg('rect', {x: x + barW * 0.2, y: y(point.confirmed), width: barW * 0.6,
        height: innerH + pad.top - y(point.confirmed), class: 'bar-confirmed'}));
      chart.lastChild.append(svg('title', {}, `${point.bucket}: ${point.confirmed} confirmed`));
    }
    if (point.dismissed) {
      chart.append(svg('line', {x1: x, x2: x + barW, y1: y(point.dismissed), y2: y(point.dismissed), class: 'tick-dismissed'}));
    }
    if (series.length <= 14 || i % Math.ceil(series.length / 14) === 0) {
      const label = bucket === 'hour' ? point.bucket.slice(5).replace('T', ' ') + 'h' : point.bucket.slice(5);
      chart.append(svg('text', {x: x + barW / 2, y: height - pad.bottom + 16, 'text-anchor': 'middle', class: 'axis'}, label));
    }
  });
  const legend = [['bar-alerts', 'alerts'], ['bar-confirmed', 'confirmed violations'], ['tick-dismissed', 'dismissed']];
  legend.forEach(([cls, name], i) => {
    const lx = pad.left + i * 170;
    chart.append(svg('rect', {x: lx, y: height - 18, width: 12, height: 12, class: cls}),
      svg('text', {x: lx + 18, y: height - 8, class: 'axis'}, name));
  });
  box.append(chart);
  const totals = el('p', 'muted', `${anchor.alerts} alerts, ${anchor.confirmed} confirmed, ${anchor.dismissed} dismissed, `
    + `${anchor.inspected} sent to inspection, ${anchor.undecided} undecided.`);
  box.append(totals);
}

// ---- wiring ------------------------------------------------------------------------------------------------------

function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.dataset.view === id);
  if (id === 'anchors-view') loadAnchors();
  else scheduleRender();
}

function init() {
  for (const category of CATEGORIES) $('f-category').append(new Option(category, category));
  for (const id of ['f-room', 'f-anchor', 'f-category', 'f-severity', 'f-status']) {
    $(id).addEventListener('change', onFilterChange);
  }
  $('alert-list').addEventListener('scroll', scheduleRender, {passive: true});
  window.addEventListener('resize', scheduleRender);
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showView(tab.dataset.view));
  $('a-bucket').addEventListener('change', loadAnchors);
  $('a-refresh').addEventListener('click', loadAnchors);
  checkSession();
}

document.addEventListener('DOMContentLoaded', init);
