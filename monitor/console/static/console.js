// Moderator console for many live rooms: room overview by open risk, an alert queue with one card
// per utterance, claims so two moderators never work the same alert, keyboard shortcuts, the room's
// timeline around an alert, evidence playback, decisions, anchor record. Chinese by default.
// Plain JavaScript, no libraries. Talks only to its own server (docs/CONSOLE.md):
//   GET /console/session (sign-in; the HttpOnly cookie then authenticates everything else)
//   ws  /v1/alerts?include=rooms,decisions,claims[,reports]&since=...  (decisions are sent here)
//   GET /v1/taxonomy, /v1/rooms, /v1/claims, /v1/rooms/<id>/timeline, /v1/evidence/<id>[/clip],
//       /v1/anchors, /v1/decisions.jsonl;  POST/DELETE /v1/claims
//   GET /v1/inspections[/<id>], /v1/inspections/<id>/claims/<evidence id>/clip; POST /v1/inspections/<id>/outcome
// What a role sees follows what the server lets it read: an inspector gets the inspection view only.
'use strict';

const SEVERITY_RANK = {info: 0, warning: 1, violation: 2};
const INSPECTION_CATEGORIES = new Set(['precious_metal_claim', 'gem_authenticity_claim']);
const ROOM_ROW_PX = 40;          // fixed row heights: the lists render only the rows in view
const CARD_ROW_PX = 66;
const OVERSCAN_ROWS = 6;
const MAX_RECONNECT_DELAY_MS = 10000;
const ROOMS_REFRESH_MS = 2000;   // /v1/rooms at most this often while alerts arrive
const TIMELINE_WINDOW_S = 30;    // the detail's timeline: utterances this far before and after
const LANG_KEY = 'monitor.console.lang';
const MODERATION_ROLES = new Set(['moderator', 'admin']);  // alerts, rooms, evidence, decisions, anchor record
const INSPECTION_READ_ROLES = new Set(['inspector', 'moderator', 'admin']);
const OUTCOME_ROLES = new Set(['inspector', 'admin']);

const I18N = {
  zh: {
    title: '审核台', conn_title: '告警连接', tab_alerts: '告警', tab_anchors: '主播档案', help_title: '快捷键 (?)',
    export: '导出决定 (JSONL)', sign_out: '退出', sign_in: '登录',
    sign_in_hint: '粘贴审核员或质检员令牌。令牌只在一次请求头中发送，页面不会保存。', token_placeholder: '审核员或质检员令牌',
    help_heading: '键盘快捷键', key_jk: '下一条 / 上一条（跳过他人正在处理的）', key_c: '确认违规（所选命中）',
    key_d: '驳回：选择理由（1–5），或输入理由后回车', key_i: '送检（贵金属、珠宝玉石）', key_p: '播放片段',
    key_num: '勾选 / 取消第 N 个命中', key_slash: '搜索直播间、主播或文字', key_esc: '关闭弹窗，离开输入框',
    key_help: '显示本帮助', close: '关闭', search_placeholder: '搜索直播间、主播、文字 (/)',
    f_category: '风险类别', f_severity: '严重程度', f_anchor: '主播', f_room_category: '直播间类目', f_status: '处理状态',
    all_categories: '全部类别', all_severities: '全部严重程度', all_anchors: '全部主播', all_room_categories: '全部类目',
    status_all: '全部状态', status_undecided: '待处理', status_confirm: '已确认', status_dismiss: '已驳回',
    status_inspect: '已送检', clear_filters: '清除筛选', rooms_heading: '直播间（按待处理风险排序）',
    queue_heading: '告警（每句一张卡片，最新在前）', select_alert: '选择一条告警（j / k）。', confirm: '确认违规',
    dismiss: '驳回误报', inspect: '送检', play: '播放片段', reason_placeholder: '驳回理由（必填）',
    buckets: '时间粒度', days: '按天', hours: '按小时', refresh: '刷新',
    anchors_hint: '来自证据存档：每位主播的告警与生效的审核决定。', select_anchor: '选择一位主播。',
    live: '在线', offline: '离线', rooms_count: (shown, all) => (shown === all ? `${all} 个` : `${shown} / ${all} 个`),
    cards_count: (shown, all, alerts) => `${shown} / ${all} 句，${alerts} 条告警`,
    room_sub: (anchor, category, last) => `${anchor}${category ? ' · ' + category : ''}${last ? ' · ' + last : ''}`,
    open_violations: '待处理违规', open_warnings: '待处理警告', total_alerts: '告警总数',
    heard: '听到', stands_for: '对应词条', source_lexicon: '词库', source_pinyin: '谐音', source_classifier: '分类模型',
    rule: '规则', regulation: '依据', confidence: '置信度', reminder: '已提醒主播', stream_time: '直播时间',
    versions: '版本', evidence: '证据编号', not_archived: '未存档', emitted: '发出时间',
    effect_raised: '升级', effect_lowered: '降级', effect_supported: '支持',
    explanation: '规则说明', no_explanation: '无上下文规则调整',
    timeline: (s) => `直播间时间线（前后 ${s} 秒）`, timeline_loading: '正在读取时间线…',
    timeline_missing: (status) => `时间线接口暂不可用（${status}）：下面只列出本页已收到的该直播间告警。`,
    timeline_empty: '这段时间没有其他内容。', report: '观众举报', utterance: '语句',
    details: '详细信息', checking_archive: '正在核对存档…',
    proof_ok: (p) => `已存档：第 ${p.leaf_index} / ${p.tree_size} 条记录，已被 ${p.checkpoint_time} 签名的检查点覆盖（已验证包含证明）。记录 SHA-256 ${p.record_sha256.slice(0, 16)}…`,
    proof_bad: (p) => `已存档为第 ${p.leaf_index} 条记录，但尚未被签名检查点覆盖`,
    archive_error: (s, m) => `存档：${s} ${m}`, clip_info: (c) => `片段：${c.duration.toFixed(1)} 秒，自直播第 ${c.start.toFixed(1)} 秒起，FLAC ${Math.round(c.size / 1024)} kB`,
    no_clip: '没有存储片段。', loading_clip: '正在加载片段…', clip_unavailable: (s, m) => `片段不可用：${s} ${m}`,
    playing: (kb) => `正在播放存档片段（${kb} kB FLAC）。`, press_play: (e) => `已加载，请点击播放（${e}）。`,
    need_reason: '驳回需要理由：按 1–5 选择，或输入后回车。', not_connected: '未连接，请稍后再试。',
    sending: '正在发送…', recorded: (id) => `已记录（决定 ${id.slice(0, 8)}…）。`,
    nothing_selected: '没有勾选可处理的命中。', claimed_by_other: (who, until) => `正在由 ${who} 处理（至 ${until}）`,
    claimed_by_me: (until) => `已由你认领（至 ${until}），他人不会同时处理`, claiming: '正在认领…',
    claim_failed: (s, m) => `认领失败：${s} ${m}`, cannot_decide: '该告警未存档，不能处理。',
    decision_confirm: '已确认违规', decision_dismiss: '已驳回（误报）', decision_inspect: '已送检',
    by_at: (by, at) => ` · ${by} · ${at}`,
    reasons: ['否定或澄清语境（如“不能治病”）', '转写有误，主播没有这样说', '引用或举例，并非宣称', '已有资质或证书', '不适用于本商品'],
    reason_other: '其他理由：在输入框填写后回车',
    refused: (s, m) => `登录被拒绝（${s}）：${m}`, unreachable: (e) => `服务器无法连接：${e}`,
    session_ended: '会话已结束，请重新登录。', signed_out: '已退出。',
    anchor_cols: ['主播', '告警', '确认', '驳回', '送检', '待处理', '确认率', '观众举报', '送检结果'],
    chart_title: (a, b) => `${a}：每${b === 'hour' ? '小时' : '天'}告警与确认违规`,
    legend: ['告警', '确认违规', '驳回'], none: '无', anchor_totals: (a) => `${a.alerts} 条告警，${a.confirmed} 确认，${a.dismissed} 驳回，${a.inspected} 送检，${a.undecided} 待处理。`,
    room_live: '直播中', room_grace: '连接中断，等待恢复', room_ended: '未在直播',
    tab_inspections: '质检', i_status: '状态', i_open: '待检', i_closed: '已出结果', i_all: '全部',
    inspections_hint: '贵金属纯度与珠宝玉石真伪宣称（待核实级别）自动开单；质检员记录检测结果，结果写入证据存档。',
    select_ticket: '选择一张质检单。', tickets_count: (n) => `${n} 张`, no_tickets: '没有质检单。',
    ticket_cols: ['直播间', '主播', '商品', '宣称', '开单时间', '结果'],
    ticket_title: (product) => `质检单：${product || '（未标明商品）'}`,
    room: '直播间', anchor: '主播', product: '商品', room_category: '直播间类目', session: '场次', opened: '开单时间',
    claims_spoken: (n) => `直播中的宣称（原话，${n} 条）`, claim_purged: '（已按保存期限清除）',
    play_claim: '播放原声', outcome_consistent: '与宣称一致', outcome_inconsistent: '与宣称不符', outcome_open: '待检',
    outcome_heading: '检测结果', outcome_history: '结果记录', record_heading: '记录检测结果',
    revise_heading: '更正检测结果（新结果生效，旧结果仍留在存档）', certificate: '证书编号', note: '备注',
    certificate_placeholder: '如 NGTC-2026-001', note_placeholder: '检测说明（可选）', record_outcome: '记录结果',
    outcome_needed: '请选择检测结果：一致或不符。', outcome_saved: (id) => `已记录并存档（结果 ${id.slice(0, 8)}…）。`,
    outcome_failed: (s, m) => `记录失败（${s}）：${m}`, outcome_read_only: '只有质检员或管理员可以记录检测结果。',
    outcome_by: (o) => `${o.by} · ${o.at}${o.certificate ? ' · 证书 ' + o.certificate : ''}${o.note ? ' · ' + o.note : ''}`,
    ticket_error: (s, m) => `读取失败（${s}）：${m}`,
    inspections_figure: (a) => `${a.inspections}（一致 ${a.inspections_consistent}，不符 ${a.inspections_inconsistent}）`,
  },
  en: {
    title: 'Moderator console', conn_title: 'alerts socket', tab_alerts: 'Alerts', tab_anchors: 'Anchor record',
    help_title: 'Keyboard shortcuts (?)', export: 'Export decisions (JSONL)', sign_out: 'Sign out', sign_in: 'Sign in',
    sign_in_hint: 'Paste your moderator or inspector token. It is sent once, in a request header, and never stored by this page.',
    token_placeholder: 'moderator or inspector token', help_heading: 'Keyboard shortcuts',
    key_jk: 'next / previous card (skips cards another moderator holds)', key_c: 'confirm violation (ticked hits)',
    key_d: 'dismiss: pick a reason (1–5), or type one and press Enter', key_i: 'send to inspection (metal, gems)',
    key_p: 'play the clip', key_num: 'tick / untick hit N', key_slash: 'search rooms, anchors, text',
    key_esc: 'close a panel, leave an input', key_help: 'this help', close: 'Close',
    search_placeholder: 'search room, anchor, text (/)', f_category: 'category', f_severity: 'severity',
    f_anchor: 'anchor', f_room_category: 'room category', f_status: 'decision', all_categories: 'all categories',
    all_severities: 'all severities', all_anchors: 'all anchors', all_room_categories: 'all room categories',
    status_all: 'any decision', status_undecided: 'undecided', status_confirm: 'confirmed', status_dismiss: 'dismissed',
    status_inspect: 'inspection', clear_filters: 'Clear filters', rooms_heading: 'Rooms by open risk',
    queue_heading: 'Alerts (one card per utterance, newest first)', select_alert: 'Select an alert (j / k).',
    confirm: 'Confirm violation', dismiss: 'Dismiss (false alert)', inspect: 'Send to inspection', play: 'Play clip',
    reason_placeholder: 'reason (needed to dismiss)', buckets: 'Buckets', days: 'days', hours: 'hours',
    refresh: 'Refresh', anchors_hint: 'Alerts and moderators\' decisions in force per anchor, from the evidence archive.',
    select_anchor: 'Select an anchor.', live: 'live', offline: 'offline',
    rooms_count: (shown, all) => (shown === all ? `${all}` : `${shown} of ${all}`),
    cards_count: (shown, all, alerts) => `${shown} of ${all} utterances, ${alerts} alerts`,
    room_sub: (anchor, category, last) => `${anchor}${category ? ' · ' + category : ''}${last ? ' · ' + last : ''}`,
    open_violations: 'open violations', open_warnings: 'open warnings', total_alerts: 'alerts',
    heard: 'heard', stands_for: 'term', source_lexicon: 'lexicon', source_pinyin: 'sound-alike',
    source_classifier: 'classifier', rule: 'Rule', regulation: 'Regulation', confidence: 'Confidence',
    reminder: 'Reminder sent', stream_time: 'Stream time', versions: 'Versions', evidence: 'Evidence id',
    not_archived: 'not archived', emitted: 'Emitted', effect_raised: 'raised', effect_lowered: 'lowered',
    effect_supported: 'supported', explanation: 'Rules applied', no_explanation: 'no context rule changed it',
    timeline: (s) => `Room timeline (±${s} s)`, timeline_loading: 'Reading the timeline…',
    timeline_missing: (status) => `The timeline route is not available (${status}): only this room's alerts received by the page are listed.`,
    timeline_empty: 'Nothing else in this window.', report: 'viewer report', utterance: 'utterance',
    details: 'Details', checking_archive: 'Checking the archive…',
    proof_ok: (p) => `Archived: record #${p.leaf_index} of ${p.tree_size}, covered by the checkpoint signed ${p.checkpoint_time} (inclusion proof checked). Record SHA-256 ${p.record_sha256.slice(0, 16)}…`,
    proof_bad: (p) => `Archived as record #${p.leaf_index} but NOT covered by a signed checkpoint`,
    archive_error: (s, m) => `Archive: ${s} ${m}`, clip_info: (c) => `Clip: ${c.duration.toFixed(1)} s from ${c.start.toFixed(1)} s of the stream, FLAC ${Math.round(c.size / 1024)} kB`,
    no_clip: 'No clip stored.', loading_clip: 'Loading clip…', clip_unavailable: (s, m) => `Clip unavailable: ${s} ${m}`,
    playing: (kb) => `Playing the archived clip (${kb} kB FLAC).`, press_play: (e) => `Loaded; press play (${e}).`,
    need_reason: 'Give a reason to dismiss: press 1–5, or type one and press Enter.',
    not_connected: 'Not connected; try again in a moment.', sending: 'Sending…',
    recorded: (id) => `Recorded (decision ${id.slice(0, 8)}…).`, nothing_selected: 'No undecided hit is ticked.',
    claimed_by_other: (who, until) => `${who} is working on this (until ${until})`,
    claimed_by_me: (until) => `Claimed by you (until ${until}); nobody else works on it meanwhile`,
    claiming: 'Claiming…', claim_failed: (s, m) => `Claim failed: ${s} ${m}`,
    cannot_decide: 'Not archived: cannot be decided.', decision_confirm: 'confirmed violation',
    decision_dismiss: 'dismissed (false alert)', decision_inspect: 'sent to inspection',
    by_at: (by, at) => ` by ${by} at ${at}`,
    reasons: ['negated or clarified in context', 'transcription error: not what was said', 'quoted or an example, not a claim', 'licence or certificate on file', 'does not apply to this product'],
    reason_other: 'other: type it in the box and press Enter',
    refused: (s, m) => `Sign-in refused (${s}): ${m}`, unreachable: (e) => `Server unreachable: ${e}`,
    session_ended: 'Your session ended; sign in again.', signed_out: 'Signed out.',
    anchor_cols: ['Anchor', 'Alerts', 'Confirmed', 'Dismissed', 'Inspection', 'Undecided', 'Confirmed / decided', 'Viewer reports', 'Inspections'],
    chart_title: (a, b) => `${a}: alerts and confirmed violations per ${b}`,
    legend: ['alerts', 'confirmed violations', 'dismissed'], none: 'none',
    anchor_totals: (a) => `${a.alerts} alerts, ${a.confirmed} confirmed, ${a.dismissed} dismissed, ${a.inspected} sent to inspection, ${a.undecided} undecided.`,
    room_live: 'live', room_grace: 'connection dropped, waiting for a resume', room_ended: 'not live',
    tab_inspections: 'Inspections', i_status: 'Status', i_open: 'open', i_closed: 'outcome recorded', i_all: 'all',
    inspections_hint: 'Info-level precious-metal purity and gem claims open a ticket; inspectors record the outcome, archived with the evidence.',
    select_ticket: 'Select a ticket.', tickets_count: (n) => `${n} tickets`, no_tickets: 'No tickets.',
    ticket_cols: ['Room', 'Anchor', 'Product', 'Claims', 'Opened', 'Outcome'],
    ticket_title: (product) => `Inspection: ${product || '(no product named)'}`,
    room: 'Room', anchor: 'Anchor', product: 'Product', room_category: 'Room category', session: 'Session', opened: 'Opened',
    claims_spoken: (n) => `Claims as spoken (${n})`, claim_purged: '(purged after its retention period)',
    play_claim: 'Play', outcome_consistent: 'consistent with the claim', outcome_inconsistent: 'inconsistent with the claim',
    outcome_open: 'open', outcome_heading: 'Outcome', outcome_history: 'Outcomes recorded', record_heading: 'Record the outcome',
    revise_heading: 'Correct the outcome (the new one is in force; the old one stays in the archive)',
    certificate: 'Certificate no.', note: 'Note', certificate_placeholder: 'e.g. NGTC-2026-001',
    note_placeholder: 'what the test found (optional)', record_outcome: 'Record outcome',
    outcome_needed: 'Choose an outcome: consistent or inconsistent.', outcome_saved: (id) => `Recorded and archived (outcome ${id.slice(0, 8)}…).`,
    outcome_failed: (s, m) => `Not recorded (${s}): ${m}`, outcome_read_only: 'Only inspectors and admins record outcomes.',
    outcome_by: (o) => `${o.by} at ${o.at}${o.certificate ? ', certificate ' + o.certificate : ''}${o.note ? ', ' + o.note : ''}`,
    ticket_error: (s, m) => `Could not read (${s}): ${m}`,
    inspections_figure: (a) => `${a.inspections} (${a.inspections_consistent} consistent, ${a.inspections_inconsistent} inconsistent)`,
  },
};

const FALLBACK_CATEGORY_TITLES = {
  absolute_claim: '绝对化用语', medical_claim: '医疗功效宣称', cosmetic_efficacy: '化妆品功效宣称',
  precious_metal_claim: '贵金属纯度宣称', gem_authenticity_claim: '珠宝玉石宣称', collectible_investment: '收藏投资宣称',
  official_endorsement: '官方背书宣称', false_price: '虚假价格', private_transaction: '私下交易', superstition: '封建迷信',
};

const state = {
  lang: 'zh',
  me: null,               // {identity, name, role}
  taxonomy: null,         // GET /v1/taxonomy
  alerts: [],             // every alert received, oldest first (alert ids sort by time)
  byId: new Map(),        // alert_id -> alert
  byEvidence: new Map(),  // evidence_id -> alert
  groups: new Map(),      // utterance key -> card {key, room_id, anchor_id, start, end, text, alerts, id}
  groupList: [],          // cards, oldest first
  decisions: new Map(),   // evidence_id -> [decision, ...] oldest first; the last is in force
  decisionIds: new Set(),
  claims: new Map(),      // evidence_id -> claim {moderator, expires_at, ...}
  myClaims: new Set(),    // evidence ids this page claimed
  claimTtlS: 300,
  renewTimer: null,
  rooms: new Map(),       // room_id -> overview entry
  reports: new Map(),     // room_id -> [report, ...] pushed on the socket
  seenAnchors: new Set(),
  roomView: [],
  cardView: [],           // cards passing the filters, oldest first (shown newest first)
  filters: {search: '', category: '', severity: '', anchor: '', roomCategory: '', status: '', room: ''},
  selected: null,         // card key
  ticked: new Set(),      // alert ids ticked in the detail
  lastAlertId: null,
  ws: null,
  include: 'rooms,decisions',
  reconnectDelayMs: 500,
  signedIn: false,
  renderQueued: false,
  roomsDirty: true,
  cardsDirty: true,
  requestSeq: 0,
  roomsTimer: null,
  timelineSeq: 0,
  ticket: null,           // the inspection ticket shown (GET /v1/inspections/<id>)
  ticketSeq: 0,
  ticketsSeq: 0,
  ticketNotice: null,     // {ticketId, outcomeId}: the outcome this page just recorded
};
// Figures for the browser test and for anyone profiling the page.
window.consoleStats = {alerts: 0, cards: 0, visible: 0, rooms: 0, roomsVisible: 0, lastRenderMs: 0,
  lastFilterMs: 0, renders: 0, domRows: 0, domRooms: 0};

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function t(key, ...args) {
  const value = I18N[state.lang][key] ?? I18N.zh[key] ?? key;
  return typeof value === 'function' ? value(...args) : value;
}

// ---- language and taxonomy ------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  document.title = state.lang === 'zh' ? '直播合规监测 · 审核台' : 'Compliance monitor · moderator console';
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll('[data-i18n-placeholder]')) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll('[data-i18n-title]')) node.title = t(node.dataset.i18nTitle);
  $('lang').textContent = state.lang === 'zh' ? 'EN' : '中文';
  fillTaxonomyOptions();
  renderReasons();
  setConn(state.ws && state.ws.readyState === WebSocket.OPEN ? t('live') : t('offline'), state.ws && state.ws.readyState === WebSocket.OPEN ? 'on' : 'off');
  state.roomsDirty = true;
  state.cardsDirty = true;
  scheduleRender();
  renderDetail();
  if (!$('anchors-view').hidden) loadAnchors();
  if (!$('inspections-view').hidden && state.signedIn) loadTickets();
}

function toggleLanguage() {
  state.lang = state.lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem(LANG_KEY, state.lang);
  applyLanguage();
}

function categoryTitle(id) {
  const found = state.taxonomy && state.taxonomy.categories.find((c) => c.id === id);
  if (found) return found[state.lang];
  return state.lang === 'zh' ? (FALLBACK_CATEGORY_TITLES[id] || id) : id;
}

function severityTitle(id) {
  const found = state.taxonomy && state.taxonomy.severities.find((s) => s.id === id);
  if (found) return found[state.lang];
  return id;
}

function roomCategoryTitle(id) {
  if (!id) return '';
  const found = state.taxonomy && state.taxonomy.room_categories.find((r) => r.id === id);
  return found ? found[state.lang] : id;
}

function ruleTerm(alert) {
  const rule = state.taxonomy && state.taxonomy.rules[alert.rule_id];
  return alert.term || (rule ? rule.term : null);  // `term` on the alert wins if the server sends it
}

async function loadTaxonomy() {
  try {
    const response = await fetch('/v1/taxonomy', {credentials: 'same-origin'});
    if (response.ok) state.taxonomy = await response.json();
  } catch (err) { /* titles fall back to the built-in ones */ }
  fillTaxonomyOptions();
  state.cardsDirty = true;
  state.roomsDirty = true;
  scheduleRender();
  renderDetail();
}

function fillOptions(select, items) {
  const keep = select.value;
  const first = select.options[0];
  select.replaceChildren(first);
  for (const [value, label] of items) select.append(new Option(label, value));
  select.value = keep;
}

function fillTaxonomyOptions() {
  const categories = state.taxonomy ? state.taxonomy.categories.map((c) => c.id) : Object.keys(FALLBACK_CATEGORY_TITLES);
  fillOptions($('f-category'), categories.map((id) => [id, categoryTitle(id)]));
  fillOptions($('f-severity'), ['violation', 'warning', 'info'].map((id) => [id, severityTitle(id)]));
  const roomCategories = state.taxonomy ? state.taxonomy.room_categories.map((r) => r.id) : [];
  fillOptions($('f-room-category'), roomCategories.map((id) => [id, roomCategoryTitle(id)]));
}

// ---- sign-in ---------------------------------------------------------------------------------

async function checkSession() {
  const response = await fetch('/console/session', {credentials: 'same-origin', cache: 'no-store'});
  if (response.ok) signedIn(await response.json());
  else showSignIn('');
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
    showSignIn(t('unreachable', err));
    return;
  }
  if (!response.ok) {
    showSignIn(t('refused', response.status, (await response.text()).trim()));
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
  state.me = who;
  $('sign-in').hidden = true;
  $('sign-in-error').textContent = '';
  $('who').textContent = `${who.identity} (${who.role})`;
  $('sign-out').hidden = false;
  state.ticket = null;
  state.ticketNotice = null;
  const moderates = MODERATION_ROLES.has(who.role);
  // tabs and links for what this role may read; the server refuses the rest anyway
  for (const tab of document.querySelectorAll('.tab')) {
    tab.hidden = tab.dataset.view === 'inspections-view' ? !INSPECTION_READ_ROLES.has(who.role) : !moderates;
  }
  $('export-link').hidden = !moderates;
  $('conn').hidden = !moderates;
  loadTaxonomy();
  if (moderates) {
    connect();
    refreshRooms();
    refreshClaims();
    if (!$('inspections-view').hidden) loadTickets();
  } else {
    showView('inspections-view');
  }
}

async function signOut() {
  await releaseMyClaims();
  await fetch('/console/logout', {method: 'POST', credentials: 'same-origin'});
  if (state.ws) state.ws.close(1000, 'signed out');
  state.ws = null;
  showSignIn(t('signed_out'));
}

// ---- the alerts socket -------------------------------------------------------------------------

// Ask for the optional message kinds this server knows: a plain GET on /v1/alerts answers 426
// (upgrade required) for a query it accepts and 400 naming an unknown `include` value.
async function chooseInclude() {
  for (const include of ['rooms,decisions,claims,reports', 'rooms,decisions,claims', 'rooms,decisions']) {
    try {
      const response = await fetch(`/v1/alerts?include=${include}`, {credentials: 'same-origin', cache: 'no-store'});
      if (response.status === 426) return include;
      if (response.status !== 400) break;
    } catch (err) { break; }
  }
  return 'rooms,decisions';
}

async function connect() {
  if (state.ws && state.ws.readyState <= WebSocket.OPEN) return;
  state.include = await chooseInclude();
  if (state.ws && state.ws.readyState <= WebSocket.OPEN) return;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = encodeURIComponent(state.lastAlertId || '0');  // since=0: every alert still held
  const ws = new WebSocket(`${scheme}//${location.host}/v1/alerts?include=${state.include}&since=${since}`);
  state.ws = ws;
  ws.onopen = () => {
    state.reconnectDelayMs = 500;
    setConn(t('live'), 'on');
    refreshRooms();
    refreshClaims();
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    setConn(`${t('offline')} (${event.code})`, 'off');
    if (state.signedIn) setTimeout(reconnect, state.reconnectDelayMs);
    state.reconnectDelayMs = Math.min(state.reconnectDelayMs * 2, MAX_RECONNECT_DELAY_MS);
  };
}

async function reconnect() {
  // a refused handshake looks like any drop to a WebSocket: ask whether we are still signed in
  try {
    const response = await fetch('/console/session', {credentials: 'same-origin', cache: 'no-store'});
    if (response.status === 401) {
      showSignIn(t('session_ended'));
      return;
    }
  } catch (err) { /* server down: keep trying */ }
  if (state.signedIn) connect();
}

function setConn(text, cls) {
  const node = $('conn');
  node.textContent = text;
  node.className = 'conn ' + cls;
  node.dataset.state = cls === 'on' ? 'live' : 'offline';
}

// Messages arrive in bursts (a replay of thousands): alerts are batched into one update per frame.
let pendingAlerts = [];
function onMessage(message) {
  switch (message.type) {
    case 'alert':
      if (!pendingAlerts.length) requestAnimationFrame(flushAlerts);
      pendingAlerts.push(message);
      break;
    case 'decision': flushAlerts(); addDecision(message); break;
    case 'room': roomEvent(message); break;
    case 'claim': setClaim(message); break;
    case 'claim_released': dropClaim(message.evidence_id); break;
    case 'report': addReport(message); break;
    case 'decision_recorded': decisionStatus(t('recorded', message.decision_id), 'ok'); break;
    case 'error': decisionStatus(`${message.code}: ${message.message}`, 'error'); break;
    default: break;
  }
}

function flushAlerts() {
  if (!pendingAlerts.length) return;
  const batch = pendingAlerts;
  pendingAlerts = [];
  addAlerts(batch);
}

// ---- alerts, cards (one per utterance) and rooms -------------------------------------------------------

function cardKey(alert) {
  return alert.start == null ? `id:${alert.alert_id}` : `${alert.room_id}|${alert.start}|${alert.end}`;
}

function roomEntry(roomId) {
  let room = state.rooms.get(roomId);
  if (!room) {
    room = {room_id: roomId, anchor_id: null, category: null, live: 'off', open: {violation: 0, warning: 0, info: 0},
      total: 0, categories: new Map(), severities: new Map(), lastAlertId: '', lastAt: null};
    state.rooms.set(roomId, room);
  }
  return room;
}

function addAlerts(alerts) {
  const started = performance.now();
  let added = 0;
  let outOfOrder = false;
  for (const alert of alerts) {
    if (state.byId.has(alert.alert_id)) continue;
    delete alert.type;
    state.byId.set(alert.alert_id, alert);
    if (alert.evidence_id) state.byEvidence.set(alert.evidence_id, alert);
    const last = state.alerts[state.alerts.length - 1];
    if (last && alert.alert_id < last.alert_id) outOfOrder = true;
    state.alerts.push(alert);
    const key = cardKey(alert);
    let card = state.groups.get(key);
    if (!card) {
      card = {key, id: alert.alert_id, room_id: alert.room_id, anchor_id: alert.anchor_id, start: alert.start,
        end: alert.end, text: alert.text, emitted_at: alert.emitted_at, alerts: []};
      state.groups.set(key, card);
      const lastCard = state.groupList[state.groupList.length - 1];
      if (lastCard && card.id < lastCard.id) outOfOrder = true;
      state.groupList.push(card);
    }
    card.alerts.push(alert);
    if (alert.alert_id < card.id) card.id = alert.alert_id;
    const room = roomEntry(alert.room_id || '-');
    room.total += 1;
    room.categories.set(alert.category, (room.categories.get(alert.category) || 0) + 1);
    room.severities.set(alert.severity, (room.severities.get(alert.severity) || 0) + 1);
    if (!room.anchor_id) room.anchor_id = alert.anchor_id;
    if (alert.alert_id > room.lastAlertId) {
      room.lastAlertId = alert.alert_id;
      room.lastAt = alert.emitted_at;
    }
    if (decisionInForce(alert) === null) room.open[alert.severity] += 1;
    if (!state.lastAlertId || alert.alert_id > state.lastAlertId) state.lastAlertId = alert.alert_id;
    noteAnchor(alert.anchor_id);
    added += 1;
  }
  if (!added) return;
  if (outOfOrder) {  // a replay after a reconnect: sort once
    state.alerts.sort((a, b) => (a.alert_id < b.alert_id ? -1 : 1));
    state.groupList.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  window.consoleStats.alerts = state.alerts.length;
  window.consoleStats.lastAddMs = performance.now() - started;
  state.cardsDirty = true;
  state.roomsDirty = true;
  scheduleRoomsRefresh();
  scheduleRender();
  if (state.selected && alerts.some((a) => cardKey(a) === state.selected)) renderDetail();
}

function noteAnchor(anchorId) {
  if (!anchorId || state.seenAnchors.has(anchorId)) return;
  state.seenAnchors.add(anchorId);
  $('f-anchor').append(new Option(anchorId, anchorId));
}

function decisionInForce(alert) {
  const list = alert.evidence_id ? state.decisions.get(alert.evidence_id) : null;
  return list && list.length ? list[list.length - 1] : null;
}

function cardSeverity(card) {
  let best = 'info';
  for (const a of card.alerts) if (SEVERITY_RANK[a.severity] > SEVERITY_RANK[best]) best = a.severity;
  return best;
}

function cardOpen(card) {
  return card.alerts.some((a) => decisionInForce(a) === null);
}

function cardMatches(card) {
  const f = state.filters;
  if (f.room && card.room_id !== f.room) return false;
  if (f.anchor && card.anchor_id !== f.anchor) return false;
  if (f.category && !card.alerts.some((a) => a.category === f.category)) return false;
  if (f.severity && !card.alerts.some((a) => a.severity === f.severity)) return false;
  if (f.roomCategory) {
    const room = state.rooms.get(card.room_id);
    if (!room || room.category !== f.roomCategory) return false;
  }
  if (f.status) {
    const hit = card.alerts.some((a) => {
      const d = decisionInForce(a);
      return f.status === 'undecided' ? d === null : (d !== null && d.decision === f.status);
    });
    if (!hit) return false;
  }
  if (f.search) {
    const needle = f.search;
    if (!((card.room_id || '').toLowerCase().includes(needle) || (card.anchor_id || '').toLowerCase().includes(needle)
      || card.text.toLowerCase().includes(needle))) return false;
  }
  return true;
}

function roomMatches(room) {
  const f = state.filters;
  if (f.anchor && room.anchor_id !== f.anchor) return false;
  if (f.category && !room.categories.has(f.category)) return false;
  if (f.severity && !room.severities.has(f.severity)) return false;
  if (f.roomCategory && room.category !== f.roomCategory) return false;
  if (f.status === 'undecided' && !(room.open.violation + room.open.warning + room.open.info)) return false;
  if (f.search && !(room.room_id.toLowerCase().includes(f.search) || (room.anchor_id || '').toLowerCase().includes(f.search))) {
    return false;
  }
  return true;
}

// Open risk first: unreviewed violations, then unreviewed warnings, then the latest alert, then id.
function byOpenRisk(a, b) {
  return (b.open.violation - a.open.violation) || (b.open.warning - a.open.warning)
    || (a.lastAlertId < b.lastAlertId ? 1 : a.lastAlertId > b.lastAlertId ? -1 : 0)
    || (a.room_id < b.room_id ? -1 : 1);
}

function recompute() {
  const started = performance.now();
  if (state.cardsDirty) {
    state.cardView = state.groupList.filter(cardMatches);
    state.cardsDirty = false;
  }
  if (state.roomsDirty) {
    state.roomView = [...state.rooms.values()].filter(roomMatches).sort(byOpenRisk);
    state.roomsDirty = false;
  }
  window.consoleStats.lastFilterMs = performance.now() - started;
}

function onFilterChange() {
  state.filters = {
    search: $('f-search').value.trim().toLowerCase(), category: $('f-category').value,
    severity: $('f-severity').value, anchor: $('f-anchor').value, roomCategory: $('f-room-category').value,
    status: $('f-status').value, room: state.filters.room,
  };
  state.cardsDirty = true;
  state.roomsDirty = true;
  $('alert-list').scrollTop = 0;
  $('room-list').scrollTop = 0;
  scheduleRender();
}

function clearFilters() {
  for (const id of ['f-search', 'f-category', 'f-severity', 'f-anchor', 'f-room-category', 'f-status']) $(id).value = '';
  state.filters.room = '';
  onFilterChange();
}

// ---- the virtual lists: only the rows in view are in the DOM ------------------------------------------

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

function render() {
  const started = performance.now();
  recompute();
  if (!$('alerts-view').hidden) {
    renderRooms();
    renderCards();
  }
  const stats = window.consoleStats;
  stats.renders += 1;
  stats.lastRenderMs = performance.now() - started;
}

function renderWindow(list, spacer, rowPx, total, makeRow, selector) {
  spacer.style.height = `${total * rowPx}px`;
  const first = Math.max(0, Math.floor(list.scrollTop / rowPx) - OVERSCAN_ROWS);
  const last = Math.min(total, Math.ceil((list.scrollTop + list.clientHeight) / rowPx) + OVERSCAN_ROWS);
  for (const row of list.querySelectorAll(selector)) row.remove();
  const fragment = document.createDocumentFragment();
  for (let i = first; i < last; i += 1) {
    const row = makeRow(i);
    row.style.top = `${i * rowPx}px`;
    fragment.append(row);
  }
  list.append(fragment);
  return last - first;
}

function renderRooms() {
  const view = state.roomView;
  const dom = renderWindow($('room-list'), $('room-spacer'), ROOM_ROW_PX, view.length, (i) => roomRow(view[i]), '.room');
  const count = $('room-count');
  count.textContent = t('rooms_count', view.length, state.rooms.size);
  count.dataset.count = String(view.length);
  Object.assign(window.consoleStats, {rooms: state.rooms.size, roomsVisible: view.length, domRooms: dom});
}

function roomRow(room) {
  const row = el('div', `room live-${room.live}`);
  row.dataset.roomId = room.room_id;
  if (state.filters.room === room.room_id) row.classList.add('selected');
  row.title = room.live === 'on' ? t('room_live') : room.live === 'grace' ? t('room_grace') : t('room_ended');
  const risk = el('span', 'risk');
  if (room.open.violation) risk.append(Object.assign(el('span', 'n violation', room.open.violation), {title: t('open_violations')}));
  if (room.open.warning) risk.append(Object.assign(el('span', 'n warning', room.open.warning), {title: t('open_warnings')}));
  risk.append(Object.assign(el('span', 'n total', room.total), {title: t('total_alerts')}));
  row.append(el('span', 'dot'), el('span', 'name', room.room_id), risk,
    el('span', 'sub', t('room_sub', room.anchor_id || '-', roomCategoryTitle(room.category), room.lastAt ? timeOf(room.lastAt) : '')));
  row.addEventListener('click', () => {
    state.filters.room = state.filters.room === room.room_id ? '' : room.room_id;
    state.cardsDirty = true;
    $('alert-list').scrollTop = 0;
    scheduleRender();
    if (state.filters.room) selectCard(firstSelectable(), {scroll: true});
  });
  return row;
}

function renderCards() {
  const view = state.cardView;
  const total = view.length;
  const dom = renderWindow($('alert-list'), $('alert-spacer'), CARD_ROW_PX, total,
    (i) => cardRow(view[total - 1 - i]), '.row');  // newest first
  const count = $('alert-count');
  let alertsShown = 0;
  for (const card of view) alertsShown += card.alerts.length;
  count.textContent = t('cards_count', total, state.groupList.length, alertsShown);
  count.dataset.count = String(alertsShown);
  count.dataset.cards = String(total);
  Object.assign(window.consoleStats, {cards: state.groupList.length, visible: alertsShown, domRows: dom});
}

function claimOf(card) {
  for (const a of card.alerts) {
    const claim = a.evidence_id && state.claims.get(a.evidence_id);
    if (claim) return claim;
  }
  return null;
}

function claimedByOther(card) {
  const claim = claimOf(card);
  return Boolean(claim && !state.myClaims.has(claim.evidence_id) && claim.moderator !== (state.me && state.me.identity));
}

function cardRow(card) {
  const severity = cardSeverity(card);
  const row = el('div', `row sev-${severity}`);
  row.dataset.key = card.key;
  row.dataset.alertIds = card.alerts.map((a) => a.alert_id).join(' ');
  if (state.selected === card.key) row.classList.add('selected');
  const head = el('div', 'row-head');
  head.append(el('span', 'time', timeOf(card.emitted_at)), el('span', 'where', `${card.room_id || '-'} · ${card.anchor_id || '-'}`));
  if (card.start != null) head.append(el('span', 'st', `${card.start.toFixed(1)} s`));
  const claim = claimOf(card);
  if (claim) {
    const other = claimedByOther(card);
    if (other) row.classList.add('claimed-other');
    head.append(el('span', `badge claim${other ? '' : ' mine'}`, `⚑ ${claim.moderator}`));
  }
  const cats = el('div', 'row-cats');
  for (const alert of card.alerts) {
    cats.append(el('span', `badge ${alert.severity}`, categoryTitle(alert.category)));
    const decision = decisionInForce(alert);
    if (decision) cats.append(el('span', `badge dec ${decision.decision}`, t('decision_' + decision.decision)));
  }
  const text = el('div', 'row-text');
  highlighted(text, card.text, card.alerts.map((a) => a.matched));
  row.append(head, cats, text);
  row.addEventListener('click', () => selectCard(card.key));
  return row;
}

function timeOf(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString(state.lang === 'zh' ? 'zh-CN' : 'en-GB', {hour12: false});
}

// The utterance with the matched phrases marked (text nodes only: nothing is parsed as HTML).
// Returns the phrases that were not found literally (heard on pinyin, or by the classifier).
function highlighted(node, text, phrases) {
  const spans = [];
  const missing = [];
  for (const phrase of new Set(phrases.filter(Boolean))) {
    const at = text.indexOf(phrase);
    if (at < 0) missing.push(phrase);
    else spans.push([at, at + phrase.length]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [from, to] of spans) {
    if (from < cursor) continue;  // overlapping phrases: the first one wins
    node.append(document.createTextNode(text.slice(cursor, from)), el('mark', null, text.slice(from, to)));
    cursor = to;
  }
  node.append(document.createTextNode(text.slice(cursor)));
  return missing;
}

// ---- selection and keyboard navigation ---------------------------------------------------------------

function visibleOrder() {
  return state.cardView.slice().reverse();  // as shown: newest first
}

function firstSelectable() {
  recompute();
  const order = visibleOrder();
  const found = order.find((c) => !claimedByOther(c));
  return found ? found.key : null;
}

function step(delta) {
  recompute();
  const order = visibleOrder();
  if (!order.length) return;
  let index = order.findIndex((c) => c.key === state.selected);
  for (let tries = 0; tries < order.length; tries += 1) {
    index = index < 0 ? (delta > 0 ? 0 : order.length - 1) : index + delta;
    if (index < 0 || index >= order.length) return;
    if (!claimedByOther(order[index])) break;
  }
  if (index >= 0 && index < order.length) selectCard(order[index].key, {scroll: true});
}

function scrollCardIntoView(key) {
  const index = visibleOrder().findIndex((c) => c.key === key);
  if (index < 0) return;
  const list = $('alert-list');
  const top = index * CARD_ROW_PX;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (top + CARD_ROW_PX > list.scrollTop + list.clientHeight) list.scrollTop = top + CARD_ROW_PX - list.clientHeight;
}

function selectCard(key, options = {}) {
  if (key === state.selected) return;
  const previous = state.groups.get(state.selected);
  state.selected = key;
  const card = state.groups.get(key);
  state.ticked = new Set(card ? card.alerts.filter((a) => a.evidence_id && decisionInForce(a) === null).map((a) => a.alert_id) : []);
  if (previous) releaseCard(previous);
  if (options.scroll) scrollCardIntoView(key);
  closeReasons();
  const audio = document.querySelector('.clip-audio');
  audio.pause();
  audio.removeAttribute('src');
  scheduleRender();
  renderDetail();
  if (card) {
    claimCard(card);
    loadTimeline(card);
    for (const alert of card.alerts) if (alert.evidence_id) loadEvidence(alert);
  }
}

function onKey(event) {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
  if (event.key === 'Escape') {
    $('help').hidden = true;
    closeReasons();
    if (typing) target.blur();
    return;
  }
  if (target === $('token') || event.ctrlKey || event.metaKey || event.altKey) return;
  if (typing) {
    if (event.key === 'Enter' && target.classList.contains('dismiss-reason')) {
      event.preventDefault();
      decideSelected('dismiss');
    }
    return;
  }
  if (!document.querySelector('.reason-picker').hidden && /^[1-9]$/.test(event.key)) {
    const reasons = t('reasons');
    const index = Number(event.key) - 1;
    if (index < reasons.length) {
      event.preventDefault();
      pickReason(reasons[index]);
    }
    return;
  }
  if ($('alerts-view').hidden && event.key !== '?') return;
  const handled = {
    j: () => step(1), k: () => step(-1), c: () => decideSelected('confirm'), d: () => decideSelected('dismiss'),
    i: () => decideSelected('inspect'), p: () => playSelected(), '/': () => $('f-search').focus(),
    '?': () => { $('help').hidden = !$('help').hidden; },
  }[event.key];
  if (handled) {
    event.preventDefault();
    handled();
    return;
  }
  if (/^[1-9]$/.test(event.key)) toggleHit(Number(event.key) - 1);
}

function toggleHit(index) {
  const card = state.groups.get(state.selected);
  if (!card || index >= card.alerts.length) return;
  const alert = card.alerts[index];
  if (state.ticked.has(alert.alert_id)) state.ticked.delete(alert.alert_id);
  else state.ticked.add(alert.alert_id);
  const box = document.querySelector(`#detail .hit[data-alert-id="${alert.alert_id}"] input[type=checkbox]`);
  if (box) box.checked = state.ticked.has(alert.alert_id);
}

// ---- claims ---------------------------------------------------------------------------------------------

async function refreshClaims() {
  try {
    const response = await fetch('/v1/claims', {credentials: 'same-origin', cache: 'no-store'});
    if (!response.ok) return;
    const data = await response.json();
    state.claimTtlS = data.ttl_s || state.claimTtlS;
    state.claims = new Map(data.claims.map((c) => [c.evidence_id, c]));
    state.cardsDirty = true;
    scheduleRender();
    renderClaimLine();
  } catch (err) { /* no claims route: the console works without claims */ }
}

function setClaim(claim) {
  state.claims.set(claim.evidence_id, claim);
  afterClaimChange(claim.evidence_id);
}

function dropClaim(evidenceId) {
  state.claims.delete(evidenceId);
  state.myClaims.delete(evidenceId);
  afterClaimChange(evidenceId);
}

function afterClaimChange(evidenceId) {
  const alert = state.byEvidence.get(evidenceId);
  if (alert) scheduleRender();
  const card = state.groups.get(state.selected);
  if (card && card.alerts.some((a) => a.evidence_id === evidenceId)) {
    renderClaimLine();
    updateDecisionButtons();
  }
}

async function claimCard(card) {
  const ids = card.alerts.filter((a) => a.evidence_id && decisionInForce(a) === null).map((a) => a.evidence_id);
  if (!ids.length) return;
  $('claim-line').textContent = t('claiming');
  for (const evidenceId of ids) {
    let response;
    try {
      response = await fetch('/v1/claims', {
        method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({evidence_id: evidenceId}),
      });
    } catch (err) { return; }
    const body = await response.json().catch(() => ({}));
    if (state.selected !== card.key) {  // moved on meanwhile: give it back
      if (response.status === 201) releaseIds([evidenceId]);
      return;
    }
    if (response.status === 201) {
      state.myClaims.add(evidenceId);
      state.claims.set(evidenceId, body);
    } else if (response.status === 409) {
      state.claims.set(evidenceId, body);
    } else if (response.status !== 404) {  // 404: no claims route on this server, or unknown record
      $('claim-line').textContent = t('claim_failed', response.status, body.message || '');
    }
  }
  state.cardsDirty = true;
  scheduleRender();
  renderClaimLine();
  updateDecisionButtons();
  scheduleRenewal();
}

function scheduleRenewal() {
  if (state.renewTimer) clearTimeout(state.renewTimer);
  if (!state.myClaims.size) return;
  state.renewTimer = setTimeout(() => {
    state.renewTimer = null;
    const card = state.groups.get(state.selected);
    if (card) claimCard(card);
  }, Math.max(5, state.claimTtlS / 2) * 1000);
}

function releaseCard(card) {
  releaseIds(card.alerts.map((a) => a.evidence_id).filter((id) => id && state.myClaims.has(id)));
}

async function releaseIds(ids) {
  await Promise.all(ids.map(async (id) => {
    state.myClaims.delete(id);
    try {
      await fetch(`/v1/claims/${id}`, {method: 'DELETE', credentials: 'same-origin'});
    } catch (err) { /* it expires */ }
  }));
}

async function releaseMyClaims() {
  await releaseIds([...state.myClaims]);
}

function renderClaimLine() {
  const line = $('claim-line');
  const card = state.groups.get(state.selected);
  line.className = 'claim-line';
  if (!card) {
    line.textContent = '';
    return;
  }
  const claim = claimOf(card);
  if (!claim) {
    line.textContent = '';
  } else if (claimedByOther(card)) {
    line.textContent = t('claimed_by_other', claim.moderator, timeOf(claim.expires_at));
    line.classList.add('error');
  } else {
    line.textContent = t('claimed_by_me', timeOf(claim.expires_at));
    line.classList.add('ok');
  }
  line.dataset.holder = claim ? claim.moderator : '';
}

// ---- detail: hits, timeline, evidence, decisions ---------------------------------------------------------------

function renderDetail() {
  const card = state.groups.get(state.selected);
  const body = $('detail-body');
  body.replaceChildren();
  const detail = $('detail');
  if (!card) {
    body.append(el('p', 'muted empty', t('select_alert')));
    delete detail.dataset.key;
    updateDecisionButtons();
    renderClaimLine();
    return;
  }
  detail.dataset.key = card.key;
  detail.dataset.alertIds = card.alerts.map((a) => a.alert_id).join(' ');
  body.append(el('h2', 'd-title', card.alerts.map((a) => categoryTitle(a.category)).join(' · ')));
  const stream = card.start == null ? '' : ` · ${t('stream_time')} ${card.start.toFixed(1)}–${card.end.toFixed(1)} s`;
  body.append(el('p', 'd-meta', `${card.room_id || '-'} · ${card.anchor_id || '-'}${stream} · ${timeOf(card.emitted_at)}`));
  const utterance = el('p', 'd-utterance');
  highlighted(utterance, card.text, card.alerts.map((a) => a.matched));
  body.append(utterance);
  const hits = el('ol', 'hits');
  card.alerts.forEach((alert, index) => hits.append(hitItem(alert, index)));
  body.append(hits);
  body.append(el('h3', null, t('timeline', TIMELINE_WINDOW_S)));
  const timeline = el('div', 'timeline-box');
  timeline.append(el('p', 'muted timeline-note', t('timeline_loading')));
  body.append(timeline);
  body.append(el('h3', null, t('details')));
  const fields = el('dl', 'd-fields');
  const first = card.alerts[0];
  const rows = [
    [t('reminder'), card.alerts.map((a) => a.reminder).join(' / ')],
    [t('versions'), `lexicon ${first.lexicon_version || '-'}, model ${first.model_version || '-'}`],
    [t('evidence'), card.alerts.map((a) => a.evidence_id || t('not_archived')).join(', ')],
    [t('emitted'), first.emitted_at],
  ];
  for (const [name, value] of rows) fields.append(el('dt', null, name), el('dd', null, value));
  body.append(fields);
  updateDecisionButtons();
  renderClaimLine();
}

function hitItem(alert, index) {
  const item = el('li', `hit sev-${alert.severity}`);
  item.dataset.alertId = alert.alert_id;
  if (alert.evidence_id) item.dataset.evidenceId = alert.evidence_id;
  const head = el('div', 'hit-head');
  const box = el('input');
  box.type = 'checkbox';
  box.checked = state.ticked.has(alert.alert_id);
  box.disabled = !alert.evidence_id;
  box.title = `${index + 1}`;
  box.addEventListener('change', () => {
    if (box.checked) state.ticked.add(alert.alert_id); else state.ticked.delete(alert.alert_id);
  });
  head.append(box, el('kbd', null, index + 1), el('span', `badge ${alert.severity}`, severityTitle(alert.severity)),
    el('span', 'cat', categoryTitle(alert.category)), el('span', 'muted', `${alert.rule_id} · ${t('source_' + alert.source)} · ${t('confidence')} ${Number(alert.confidence).toFixed(2)}`));
  const decision = decisionInForce(alert);
  if (decision) head.append(el('span', `badge dec ${decision.decision}`, t('decision_' + decision.decision)));
  item.append(head);
  const term = ruleTerm(alert);
  const heard = el('p', 'heard');
  if (term && term !== alert.matched) {
    heard.append(el('span', 'muted', `${t('heard')} `), el('mark', 'matched', alert.matched), el('span', 'arrow', '→'),
      el('span', 'term', term));
    heard.dataset.term = term;
  } else {
    heard.append(el('span', 'muted', `${t('stands_for')} `), el('mark', 'matched', alert.matched));
  }
  item.append(heard);
  item.append(el('p', 'hit-fields', `${t('regulation')}: ${alert.regulation}`));
  const explanation = alert.explanation || [];
  if (explanation.length) {
    const list = el('ul', 'explain');
    for (const step of explanation) {
      const li = el('li', step.effect);
      li.dataset.rule = step.rule;
      li.append(el('strong', null, `${t('effect_' + step.effect)} `), `${step.rule}: ${step.detail}`);
      list.append(li);
    }
    item.append(list);
  } else {
    item.append(el('p', 'hit-fields', `${t('explanation')}: ${t('no_explanation')}`));
  }
  item.append(el('p', 'proof muted', alert.evidence_id ? t('checking_archive') : t('cannot_decide')));
  item.append(el('ol', 'decision-history'));
  renderHistoryInto(item, alert);
  return item;
}

async function loadEvidence(alert) {
  const response = await fetch(`/v1/evidence/${alert.evidence_id}`, {credentials: 'same-origin'});
  const item = document.querySelector(`#detail .hit[data-alert-id="${alert.alert_id}"]`);
  if (!item) return;
  const proof = item.querySelector('.proof');
  if (!response.ok) {
    proof.textContent = t('archive_error', response.status, (await response.text()).trim());
    return;
  }
  const record = await response.json();
  const p = record.proof;
  proof.textContent = p.covered_by_signed_checkpoint ? t('proof_ok', p) : t('proof_bad', p);
  proof.className = 'proof ' + (p.covered_by_signed_checkpoint ? 'ok' : 'error');
  proof.dataset.covered = String(p.covered_by_signed_checkpoint);
  if (record.clip) {
    proof.dataset.clip = t('clip_info', record.clip);
    proof.title = proof.dataset.clip;
  }
  for (const decision of record.decisions || []) addDecision({type: 'decision', ...decision});
}

// The room around the alert: utterances, other alerts and viewer reports within ±30 s
// (GET /v1/rooms/<id>/timeline). Without that route, this room's alerts the page holds.
async function loadTimeline(card) {
  const seq = ++state.timelineSeq;
  const since = Math.max(0, (card.start || 0) - TIMELINE_WINDOW_S);
  const until = (card.end || 0) + TIMELINE_WINDOW_S;
  let items = null;
  let status = '';
  if (card.room_id && card.start != null) {
    try {
      const response = await fetch(`/v1/rooms/${encodeURIComponent(card.room_id)}/timeline?since_s=${since.toFixed(2)}&until_s=${until.toFixed(2)}`,
        {credentials: 'same-origin', cache: 'no-store'});
      if (response.ok) items = (await response.json()).items;
      else status = response.status;
    } catch (err) {
      status = String(err);
    }
  }
  if (seq !== state.timelineSeq || state.selected !== card.key) return;
  const box = document.querySelector('#detail .timeline-box');
  if (!box) return;
  box.replaceChildren();
  box.dataset.source = items ? 'server' : 'page';
  if (!items) {
    box.append(el('p', 'muted timeline-note', t('timeline_missing', status || '-')));
    items = state.alerts.filter((a) => a.room_id === card.room_id && a.start != null && a.start >= since && a.start <= until)
      .map((a) => ({type: 'alert', ...a}));
  }
  const reports = (state.reports.get(card.room_id) || []).filter((r) => r.stream_time == null || (r.stream_time >= since && r.stream_time <= until));
  for (const report of reports) {
    if (!items.some((i) => i.type === 'report' && i.report_id === report.report_id)) items.push({type: 'report', ...report});
  }
  items = items.slice().sort((a, b) => itemTime(a) - itemTime(b));
  const list = el('ul', 'timeline');
  for (const item of items) list.append(timelineItem(item, card));
  if (!items.length) box.append(el('p', 'muted timeline-note', t('timeline_empty')));
  box.append(list);
}

function itemTime(item) {
  const value = item.type === 'report' ? (item.stream_time ?? item.start) : item.start;
  return value == null ? Number.MAX_VALUE : value;
}

function timelineItem(item, card) {
  const li = el('li', item.type);
  li.dataset.type = item.type;
  const at = itemTime(item);
  li.append(el('span', 't', at === Number.MAX_VALUE ? '—' : `${at.toFixed(1)}s`));
  if (item.type === 'utterance') {
    if (item.start === card.start && item.end === card.end) li.classList.add('current');
    highlighted(li, item.text || '', item.start === card.start ? card.alerts.map((a) => a.matched) : []);
  } else if (item.type === 'alert') {
    if (cardKey(item) === card.key) li.classList.add('current');
    li.append(el('span', `badge ${item.severity}`, categoryTitle(item.category)));
    highlighted(li, item.text || '', [item.matched]);
  } else if (item.type === 'report') {
    li.dataset.reportId = item.report_id || '';
    li.append(el('span', 'badge report', t('report')));
    li.append(`${item.category ? categoryTitle(item.category) + ': ' : ''}${item.reason || ''}`);
    if (item.viewer_id) li.append(el('span', 'muted', ` (${item.viewer_id})`));
  } else {
    li.append(el('span', 'muted', `${item.type}: ${item.text || ''}`));
  }
  return li;
}

function addReport(report) {
  const list = state.reports.get(report.room_id) || [];
  list.push(report);
  state.reports.set(report.room_id, list);
  const card = state.groups.get(state.selected);
  if (card && card.room_id === report.room_id) loadTimeline(card);
}

function selectedCard() {
  return state.groups.get(state.selected) || null;
}

function updateDecisionButtons() {
  const card = selectedCard();
  const bar = $('decision-bar');
  const decidable = Boolean(card && card.alerts.some((a) => a.evidence_id)) && !(card && claimedByOther(card));
  for (const button of bar.querySelectorAll('.decide button')) button.disabled = !decidable;
  bar.querySelector('.dismiss-reason').disabled = !decidable;
  bar.querySelector('.play-clip').disabled = !(card && card.alerts.some((a) => a.evidence_id));
  bar.querySelector('.decide-inspect').hidden = !(card && card.alerts.some((a) => INSPECTION_CATEGORIES.has(a.category)));
  bar.dataset.decidable = String(decidable);
}

function renderReasons() {
  const picker = document.querySelector('.reason-picker');
  picker.replaceChildren();
  t('reasons').forEach((reason, index) => {
    const li = el('li', null, reason);
    li.dataset.index = String(index + 1);
    li.addEventListener('click', () => pickReason(reason));
    picker.append(li);
  });
  picker.append(Object.assign(el('li', 'muted', t('reason_other')), {value: 0}));
}

function openReasons() {
  const picker = document.querySelector('.reason-picker');
  picker.hidden = false;
  decisionStatus(t('need_reason'), 'error');
}

function closeReasons() {
  const picker = document.querySelector('.reason-picker');
  if (picker) picker.hidden = true;
}

function pickReason(reason) {
  document.querySelector('#decision-bar .dismiss-reason').value = reason;
  closeReasons();
  decideSelected('dismiss');
}

function decideSelected(decision) {
  const card = selectedCard();
  if (!card || claimedByOther(card)) return;
  const reasonInput = document.querySelector('#decision-bar .dismiss-reason');
  const reason = reasonInput.value.trim();
  if (decision === 'dismiss' && !reason) {
    openReasons();
    return;
  }
  const targets = card.alerts.filter((a) => a.evidence_id && state.ticked.has(a.alert_id)
    && (decision !== 'inspect' || INSPECTION_CATEGORIES.has(a.category)));
  if (!targets.length) {
    decisionStatus(t('nothing_selected'), 'error');
    return;
  }
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    decisionStatus(t('not_connected'), 'error');
    return;
  }
  for (const alert of targets) {
    state.requestSeq += 1;
    state.ws.send(JSON.stringify({
      type: 'decision', evidence_id: alert.evidence_id, decision, reason: reason || null, request_id: `r${state.requestSeq}`,
    }));
    state.ticked.delete(alert.alert_id);
  }
  reasonInput.value = '';
  closeReasons();
  decisionStatus(t('sending'), '');
  document.activeElement && document.activeElement.blur && document.activeElement.blur();
}

function decisionStatus(text, cls) {
  const node = document.querySelector('#decision-bar .decision-status');
  node.textContent = text;
  node.className = 'decision-status ' + cls;
}

function addDecision(decision) {
  const id = decision.decision_id || `${decision.evidence_id}:${decision.seq}`;
  if (state.decisionIds.has(id)) return;
  state.decisionIds.add(id);
  const alert = state.byEvidence.get(decision.evidence_id);
  const wasOpen = alert ? decisionInForce(alert) === null : false;
  const list = state.decisions.get(decision.evidence_id) || [];
  list.push(decision);
  list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  state.decisions.set(decision.evidence_id, list);
  if (alert) {
    const isOpen = decisionInForce(alert) === null;
    if (wasOpen !== isOpen) {
      const room = roomEntry(alert.room_id || '-');
      room.open[alert.severity] += isOpen ? 1 : -1;
    }
  }
  state.cardsDirty = true;
  state.roomsDirty = true;
  scheduleRender();
  const card = selectedCard();
  if (card && alert && cardKey(alert) === card.key) {
    const item = document.querySelector(`#detail .hit[data-alert-id="${alert.alert_id}"]`);
    if (item) item.replaceWith(hitItem(alert, card.alerts.indexOf(alert)));
    const reloaded = document.querySelector(`#detail .hit[data-alert-id="${alert.alert_id}"]`);
    if (reloaded) loadProofOnly(alert, reloaded);
    if (!cardOpen(card) && state.myClaims.size) releaseCard(card);
  }
}

async function loadProofOnly(alert, item) {
  const response = await fetch(`/v1/evidence/${alert.evidence_id}`, {credentials: 'same-origin'});
  if (!response.ok) return;
  const record = await response.json();
  const proof = item.querySelector('.proof');
  const p = record.proof;
  proof.textContent = p.covered_by_signed_checkpoint ? t('proof_ok', p) : t('proof_bad', p);
  proof.className = 'proof ' + (p.covered_by_signed_checkpoint ? 'ok' : 'error');
  proof.dataset.covered = String(p.covered_by_signed_checkpoint);
}

function renderHistoryInto(item, alert) {
  const history = item.querySelector('.decision-history');
  history.replaceChildren();
  for (const d of state.decisions.get(alert.evidence_id) || []) {
    const li = el('li', `dec ${d.decision}`);
    li.append(el('strong', null, t('decision_' + d.decision)), t('by_at', d.by, d.at));
    if (d.reason) li.append(el('span', 'reason', ` — ${d.reason}`));
    history.append(li);
  }
}

async function playSelected() {
  const card = selectedCard();
  const alert = card && card.alerts.find((a) => a.evidence_id);
  if (!alert) return;
  const audio = document.querySelector('#decision-bar .clip-audio');
  decisionStatus(t('loading_clip'), '');
  const response = await fetch(`/v1/evidence/${alert.evidence_id}/clip`, {credentials: 'same-origin'});
  if (!response.ok) {
    decisionStatus(t('clip_unavailable', response.status, (await response.text()).trim()), 'error');
    return;
  }
  const blob = await response.blob();
  if (audio.dataset.url) URL.revokeObjectURL(audio.dataset.url);
  audio.dataset.url = URL.createObjectURL(blob);
  audio.src = audio.dataset.url;
  try {
    await audio.play();
    decisionStatus(t('playing', Math.round(blob.size / 1024)), '');
  } catch (err) {
    decisionStatus(t('press_play', err.name), '');
  }
}

// ---- rooms from the server ------------------------------------------------------------------------------

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
  const live = (await response.json()).rooms;
  for (const room of state.rooms.values()) room.live = 'off';
  for (const info of live) applyRoomInfo(info);
  state.roomsDirty = true;
  state.cardsDirty = true;
  scheduleRender();
}

function applyRoomInfo(info) {
  const room = roomEntry(info.room_id);
  room.live = info.connected === false ? 'grace' : 'on';
  if (info.anchor_id) room.anchor_id = info.anchor_id;
  if (info.category !== undefined && info.category !== null) room.category = info.category;
  room.started_at = info.started_at;
  noteAnchor(info.anchor_id);
}

function roomEvent(event) {
  if (event.event === 'open') applyRoomInfo(event);
  else roomEntry(event.room_id).live = 'off';
  state.roomsDirty = true;
  scheduleRender();
}

// ---- anchor record ------------------------------------------------------------------------------------------

// Viewer reports and inspection outcomes are rendered when the server's anchor record has them:
// a number as is, an object as "key value" pairs, a list by its length.
function extraFigure(value) {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  if (Array.isArray(value)) return String(value.length);
  return Object.entries(value).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

async function loadAnchors() {
  const bucket = $('a-bucket').value;
  const response = await fetch(`/v1/anchors?bucket=${bucket}`, {credentials: 'same-origin', cache: 'no-store'});
  const table = $('anchor-table');
  const body = table.querySelector('tbody');
  body.replaceChildren();
  if (!response.ok) {
    const row = body.insertRow();
    row.insertCell().textContent = `${response.status} ${(await response.text()).trim()}`;
    return;
  }
  const data = await response.json();
  const hasReports = data.anchors.some((a) => a.reports !== undefined);
  const hasInspections = data.anchors.some((a) => a.inspections !== undefined);
  const columns = t('anchor_cols').slice(0, 7);
  if (hasReports) columns.push(t('anchor_cols')[7]);
  if (hasInspections) columns.push(t('anchor_cols')[8]);
  const headRow = table.querySelector('thead tr');
  headRow.replaceChildren(...columns.map((name) => el('th', null, name)));
  for (const anchor of data.anchors) {
    const row = body.insertRow();
    row.dataset.anchorId = anchor.anchor_id || '';
    const share = anchor.confirmed_share_of_decided;
    const values = [anchor.anchor_id || t('none'), anchor.alerts, anchor.confirmed, anchor.dismissed,
      anchor.inspected, anchor.undecided, share === null ? '-' : `${Math.round(share * 100)} %`];
    if (hasReports) values.push(extraFigure(anchor.reports));
    if (hasInspections) {
      values.push(typeof anchor.inspections === 'number' && anchor.inspections_consistent !== undefined
        ? t('inspections_figure', anchor) : extraFigure(anchor.inspections));
    }
    values.forEach((value, i) => {
      const cell = row.insertCell();
      cell.textContent = value;
      if (i === 7 && hasReports) cell.className = 'reports';
      if ((i === 8 || (i === 7 && !hasReports)) && hasInspections) cell.className = 'inspections';
    });
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
  box.replaceChildren(el('h3', null, t('chart_title', anchor.anchor_id || t('none'), bucket)));
  const series = anchor.series;
  const width = 640;
  const height = 260;
  const pad = {left: 40, right: 10, top: 10, bottom: 50};
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...series.map((s) => s.alerts));
  const chart = svg('svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': t('chart_title', anchor.anchor_id || t('none'), bucket)});
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
    chart.append(svg('rect', {x, y: y(point.alerts), width: barW, height: innerH + pad.top - y(point.alerts), class: 'bar-alerts'}));
    chart.lastChild.append(svg('title', {}, `${point.bucket}: ${point.alerts}`));
    if (point.confirmed) {
      chart.append(svg('rect', {x: x + barW * 0.2, y: y(point.confirmed), width: barW * 0.6,
        height: innerH + pad.top - y(point.confirmed), class: 'bar-confirmed'}));
      chart.lastChild.append(svg('title', {}, `${point.bucket}: ${point.confirmed}`));
    }
    if (point.dismissed) {
      chart.append(svg('line', {x1: x, x2: x + barW, y1: y(point.dismissed), y2: y(point.dismissed), class: 'tick-dismissed'}));
    }
    if (series.length <= 14 || i % Math.ceil(series.length / 14) === 0) {
      const label = bucket === 'hour' ? point.bucket.slice(5).replace('T', ' ') + 'h' : point.bucket.slice(5);
      chart.append(svg('text', {x: x + barW / 2, y: height - pad.bottom + 16, 'text-anchor': 'middle', class: 'axis'}, label));
    }
  });
  const legend = t('legend');
  [['bar-alerts', legend[0]], ['bar-confirmed', legend[1]], ['tick-dismissed', legend[2]]].forEach(([cls, name], i) => {
    const lx = pad.left + i * 170;
    chart.append(svg('rect', {x: lx, y: height - 18, width: 12, height: 12, class: cls}),
      svg('text', {x: lx + 18, y: height - 8, class: 'axis'}, name));
  });
  box.append(chart);
  box.append(el('p', 'muted', t('anchor_totals', anchor)));
}

// ---- inspections: tickets opened by info-level purity and gem claims ---------------------------------------

function outcomeBadge(outcome) {
  const key = outcome ? `outcome_${outcome}` : 'outcome_open';
  return el('span', `badge outcome-${outcome || 'open'}`, t(key));
}

async function errorText(response) {
  const text = (await response.text()).trim();
  try {
    const body = JSON.parse(text);
    return body.message || body.error || text;
  } catch (err) {
    return text;
  }
}

async function loadTickets() {
  if (!state.signedIn) return;
  const status = $('i-status').value;
  const table = $('ticket-table');
  const body = table.querySelector('tbody');
  table.querySelector('thead tr').replaceChildren(...t('ticket_cols').map((name) => el('th', null, name)));
  const seq = ++state.ticketsSeq;
  let response;
  let answer;
  try {
    response = await fetch(`/v1/inspections?limit=1000${status ? '&status=' + status : ''}`,
      {credentials: 'same-origin', cache: 'no-store'});
    answer = response.ok ? await response.json() : await errorText(response);
  } catch (err) {
    if (seq === state.ticketsSeq) $('i-count').textContent = t('unreachable', err);
    return;
  }
  if (seq !== state.ticketsSeq) return;  // a later request (another status) answers instead
  body.replaceChildren();  // and the rows at once: no await in between
  if (!response.ok) {
    $('i-count').textContent = t('ticket_error', response.status, answer);
    return;
  }
  const tickets = answer.inspections;
  $('i-count').textContent = tickets.length ? t('tickets_count', tickets.length) : t('no_tickets');
  for (const ticket of tickets) {
    const row = body.insertRow();
    row.dataset.ticketId = ticket.ticket_id;
    row.dataset.status = ticket.status;
    row.insertCell().textContent = ticket.room_id || '-';
    row.insertCell().textContent = ticket.anchor_id || t('none');
    const product = row.insertCell();
    product.className = 'product';
    product.textContent = ticket.product || '-';
    row.insertCell().textContent = ticket.claims;
    row.insertCell().textContent = dateTimeOf(ticket.opened_at);
    row.insertCell().append(outcomeBadge(ticket.outcome));
    if (state.ticket && state.ticket.ticket_id === ticket.ticket_id) row.classList.add('selected');
    row.addEventListener('click', () => openTicket(ticket.ticket_id));
  }
  if (state.ticket) {
    renderTicket();
  } else if (body.rows.length) {
    openTicket(body.rows[0].dataset.ticketId);
  }
}

async function openTicket(ticketId) {
  const seq = ++state.ticketSeq;
  if (state.ticketNotice && state.ticketNotice.ticketId !== ticketId) state.ticketNotice = null;
  for (const row of $('ticket-table').querySelector('tbody').rows) {
    row.classList.toggle('selected', row.dataset.ticketId === ticketId);
  }
  const response = await fetch(`/v1/inspections/${ticketId}`, {credentials: 'same-origin', cache: 'no-store'});
  if (seq !== state.ticketSeq) return;
  if (!response.ok) {
    $('ticket-detail').replaceChildren(el('p', 'error', t('ticket_error', response.status, await errorText(response))));
    return;
  }
  state.ticket = await response.json();
  renderTicket();
}

function dateTimeOf(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(state.lang === 'zh' ? 'zh-CN' : 'en-GB', {hour12: false});
}

function field(list, name, value) {
  list.append(el('dt', null, name), el('dd', null, value == null || value === '' ? '-' : value));
}

function renderTicket() {
  const ticket = state.ticket;
  const box = $('ticket-detail');
  if (!ticket) {
    box.replaceChildren(el('p', 'muted', t('select_ticket')));
    return;
  }
  box.replaceChildren();
  box.dataset.ticketId = ticket.ticket_id;
  box.dataset.status = ticket.status;
  const title = el('h2', null, t('ticket_title', ticket.product));
  title.append(' ', outcomeBadge(ticket.outcome));
  box.append(title);
  const fields = el('dl', 'd-fields');
  field(fields, t('room'), ticket.room_id);
  field(fields, t('anchor'), ticket.anchor_id);
  field(fields, t('product'), ticket.product);
  field(fields, t('room_category'), roomCategoryTitle(ticket.room_category));
  field(fields, t('session'), ticket.session_id);
  field(fields, t('opened'), ticket.opened_at);
  box.append(fields);

  box.append(el('h3', null, t('claims_spoken', ticket.claims.length)));
  const claims = el('ol', 'claims-spoken');
  for (const claim of ticket.claims) claims.append(claimItem(ticket, claim));
  box.append(claims);

  if (ticket.outcomes && ticket.outcomes.length) {
    box.append(el('h3', null, t('outcome_history')));
    const history = el('ol', 'outcome-history');
    for (const outcome of ticket.outcomes) {
      const li = el('li', `outcome ${outcome.outcome}`);
      li.dataset.outcomeId = outcome.outcome_id || '';
      li.append(outcomeBadge(outcome.outcome), ' ', t('outcome_by', outcome));
      history.append(li);
    }
    box.append(history);
  }
  box.append(el('h3', null, ticket.status === 'open' ? t('record_heading') : t('revise_heading')));
  if (!state.me || !OUTCOME_ROLES.has(state.me.role)) {
    box.append(el('p', 'muted', t('outcome_read_only')));
    return;
  }
  box.append(outcomeForm(ticket));
}

function claimItem(ticket, claim) {
  const li = el('li', 'claim-spoken');
  li.dataset.evidenceId = claim.evidence_id;
  const head = el('div', 'c-head');
  const at = claim.start == null ? '—' : `${claim.start.toFixed(1)}–${(claim.end ?? claim.start).toFixed(1)}s`;
  head.append(el('span', `badge ${claim.severity}`, categoryTitle(claim.category)), el('span', null, at));
  if (claim.rule_id) head.append(el('span', null, `${t('rule')} ${claim.rule_id}`));
  li.append(head);
  const text = el('p', 'c-text');
  if (claim.text == null) text.append(el('span', 'muted', t('claim_purged')));
  else highlighted(text, claim.text, claim.matched ? [claim.matched] : []);
  li.append(text);
  if ((claim.explanation || []).length) {
    const rules = el('ul', 'explain');
    for (const step of claim.explanation) {
      const item = el('li', step.effect);
      item.append(el('strong', null, `${t('effect_' + step.effect)} `), `${step.rule}: ${step.detail}`);
      rules.append(item);
    }
    li.append(rules);
  }
  if (claim.clip_url) {
    const button = el('button', 'play-claim', t('play_claim'));
    button.type = 'button';
    const audio = el('audio', 'claim-audio');
    audio.controls = true;
    audio.preload = 'none';
    const status = el('span', 'muted claim-status');
    button.addEventListener('click', () => playClaim(claim, audio, status));
    head.append(button, status);
    li.append(audio);
  }
  return li;
}

async function playClaim(claim, audio, status) {
  status.textContent = t('loading_clip');
  const response = await fetch(claim.clip_url, {credentials: 'same-origin'});
  if (!response.ok) {
    status.textContent = t('clip_unavailable', response.status, await errorText(response));
    return;
  }
  const blob = await response.blob();
  if (audio.dataset.url) URL.revokeObjectURL(audio.dataset.url);
  audio.dataset.url = URL.createObjectURL(blob);
  audio.src = audio.dataset.url;
  try {
    await audio.play();
    status.textContent = t('playing', Math.round(blob.size / 1024));
  } catch (err) {
    status.textContent = t('press_play', err.name);
  }
}

function outcomeForm(ticket) {
  const form = el('form', 'outcome-form');
  form.autocomplete = 'off';
  form.append(el('span', null, t('outcome_heading')));
  const choices = el('div', 'choices');
  for (const value of ['consistent', 'inconsistent']) {
    const label = el('label', `choice-${value}`);
    const radio = el('input');
    radio.type = 'radio';
    radio.name = 'outcome';
    radio.value = value;
    label.append(radio, ' ', t(`outcome_${value}`));
    choices.append(label);
  }
  form.append(choices);
  const certificate = el('input', 'certificate');
  certificate.type = 'text';
  certificate.maxLength = 1000;
  certificate.placeholder = t('certificate_placeholder');
  form.append(el('label', null, t('certificate')), certificate);
  const note = el('textarea', 'note');
  note.maxLength = 1000;
  note.placeholder = t('note_placeholder');
  form.append(el('label', null, t('note')), note);
  const line = el('div', 'submit-line');
  const submit = el('button', 'record-outcome', t('record_outcome'));
  submit.type = 'submit';
  const status = el('span', 'outcome-status');
  status.setAttribute('role', 'status');
  line.append(submit, status);
  form.append(line);
  if (state.ticketNotice && state.ticketNotice.ticketId === ticket.ticket_id) {
    status.className = 'outcome-status ok';
    status.textContent = t('outcome_saved', state.ticketNotice.outcomeId);
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = form.querySelector('input[name=outcome]:checked');
    if (!chosen) {
      status.className = 'outcome-status error';
      status.textContent = t('outcome_needed');
      return;
    }
    submit.disabled = true;
    status.className = 'outcome-status';
    status.textContent = t('sending');
    const body = {outcome: chosen.value, certificate: certificate.value.trim() || null, note: note.value.trim() || null};
    let response;
    try {
      response = await fetch(`/v1/inspections/${ticket.ticket_id}/outcome`, {
        method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(body),
      });
    } catch (err) {
      submit.disabled = false;
      status.className = 'outcome-status error';
      status.textContent = t('unreachable', err);
      return;
    }
    if (!response.ok) {
      submit.disabled = false;
      status.className = 'outcome-status error';
      status.textContent = t('outcome_failed', response.status, await errorText(response));
      return;
    }
    const recorded = await response.json();
    state.ticketNotice = {ticketId: ticket.ticket_id, outcomeId: recorded.outcome_id};
    await openTicket(ticket.ticket_id);
    await loadTickets();
  });
  return form;
}

// ---- wiring ------------------------------------------------------------------------------------------------------

function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.dataset.view === id);
  if (id === 'anchors-view') loadAnchors();
  else if (id === 'inspections-view') loadTickets();
  else scheduleRender();
}

function init() {
  const saved = localStorage.getItem(LANG_KEY);
  state.lang = saved === 'en' ? 'en' : 'zh';
  for (const id of ['f-category', 'f-severity', 'f-anchor', 'f-room-category', 'f-status']) {
    $(id).addEventListener('change', onFilterChange);
  }
  $('f-search').addEventListener('input', onFilterChange);
  $('f-clear').addEventListener('click', clearFilters);
  $('alert-list').addEventListener('scroll', scheduleRender, {passive: true});
  $('room-list').addEventListener('scroll', scheduleRender, {passive: true});
  window.addEventListener('resize', scheduleRender);
  document.addEventListener('keydown', onKey);
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('lang').addEventListener('click', toggleLanguage);
  $('help-button').addEventListener('click', () => { $('help').hidden = false; });
  $('help-close').addEventListener('click', () => { $('help').hidden = true; });
  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showView(tab.dataset.view));
  $('a-bucket').addEventListener('change', loadAnchors);
  $('a-refresh').addEventListener('click', loadAnchors);
  $('i-status').addEventListener('change', loadTickets);
  $('i-refresh').addEventListener('click', loadTickets);
  const bar = $('decision-bar');
  bar.querySelector('.decide-confirm').addEventListener('click', () => decideSelected('confirm'));
  bar.querySelector('.decide-dismiss').addEventListener('click', () => decideSelected('dismiss'));
  bar.querySelector('.decide-inspect').addEventListener('click', () => decideSelected('inspect'));
  bar.querySelector('.play-clip').addEventListener('click', playSelected);
  window.addEventListener('pagehide', () => {
    for (const id of state.myClaims) fetch(`/v1/claims/${id}`, {method: 'DELETE', credentials: 'same-origin', keepalive: true});
  });
  applyLanguage();
  checkSession();
}

document.addEventListener('DOMContentLoaded', init);
