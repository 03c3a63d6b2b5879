// 网格治理看板: login, the unit's map and panels, drill-down county → township → village → grid
// with breadcrumbs, the period selector, 一户一档 and an issue's timeline, the XLSX ledger.
// Plain ES modules; every figure comes from the public API (/api/v1/dashboard/…).
import * as api from './api.js';
import * as charts from './charts.js';
import { DashboardMap } from './map.js';

const CONFIG = JSON.parse(document.querySelector('meta[name="gridgov-config"]').content);
const LEVEL_OF = { 6: 'county', 9: 'township', 12: 'village', 15: 'grid' };
const LEVEL_LABEL = { county: '县', township: '乡镇', village: '村', grid: '网格' };
const COLOUR_LABEL = { green: '绿', yellow: '黄', red: '红' };
const PART_LABEL = { overdue: '超期未访', contacts: '联系户覆盖', issues: '事件办理' };
const OPEN_EXCLUDED = new Set(['CLOSED', 'REJECTED', 'MERGED', 'CANCELLED', 'RESOLVED', 'SELF_RESOLVED', 'VERIFIED']);
const RAMP = ['#d32f2f', '#f57c00', '#fbc02d', '#9ccc65', '#2e7d32'];
const WARN = { green: '#43a047', yellow: '#fbc02d', red: '#e53935' };
const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  code: null,
  names: new Map(),
  period: { kind: 'month', date: shanghaiToday(), from: null, to: null },
  children: [],
  summary: null,
  issues: null,
  categories: new Map(),
  loads: 0,
};
let dmap = null;
window.dashboard = { state, get map() { return dmap && dmap.map; } };

// -- small helpers -----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function shanghaiToday() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());
}

function addDays(iso, days) {
  const [y, m, d] = iso.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return t.toISOString().slice(0, 10);
}

function addMonths(iso, months) {
  const [y, m] = iso.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1 + months, 1)).toISOString().slice(0, 10);
}

const pct = charts.pct;
const num = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('zh-CN'));
const fmtTime = (s) => (s ? new Date(s).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '—');

function badge(colour, text) {
  return h('span', { class: `badge badge-${colour}`, title: '三色预警' }, text || COLOUR_LABEL[colour] || colour);
}

function toast(message) {
  const t = $('toast');
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 5000);
}

function status(message) {
  $('map-status').textContent = message;
}

function levelOf(code) {
  return LEVEL_OF[code.length];
}

function periodParams() {
  const p = state.period;
  if (p.kind === 'range') return { period: 'range', from: p.from, to: p.to };
  return { period: p.kind, date: p.date };
}

function trendParams() {
  const p = state.period;
  if (p.kind === 'day') return { kind: 'day', from: addDays(p.date, -29), to: p.date };
  if (p.kind === 'week') return { kind: 'week', from: addDays(p.date, -7 * 11), to: p.date };
  if (p.kind === 'month') return { kind: 'month', from: addMonths(p.date, -11), to: p.date };
  const days = (Date.parse(p.to) - Date.parse(p.from)) / 86400000;
  return { kind: days > 92 ? 'week' : 'day', from: p.from, to: p.to };
}

// -- routing: #/<code>?period=…&date=… --------------------------------------------------------

function readHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const q = new URLSearchParams(query || '');
  if (q.get('period')) {
    state.period = {
      kind: q.get('period'),
      date: q.get('date') || shanghaiToday(),
      from: q.get('from'),
      to: q.get('to'),
    };
  }
  return /^[0-9]{6}([0-9]{3}){0,3}$/.test(path) ? path : null;
}

function go(code) {
  const q = new URLSearchParams(periodParams());
  const target = `#/${code}?${q}`;
  if (location.hash === target) load(code);
  else location.hash = target;
}

window.addEventListener('hashchange', () => {
  if (!state.me) return;
  load(readHash() || rootCode());
});

function rootCode() {
  return state.me.grid_code || state.me.unit_code;
}

// -- login -------------------------------------------------------------------------------------

function showLogin(message) {
  state.me = null;
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  document.body.dataset.state = 'login';
  $('username').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  $('login-submit').disabled = true;
  try {
    await api.login($('username').value.trim(), $('password').value);
    $('password').value = '';
    await start();
  } catch (err) {
    $('login-error').textContent = err.status === 401 ? '用户名或密码不正确' : err.message;
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', () => {
  api.logout();
});
api.onLogout(() => showLogin('已退出登录'));

async function start() {
  state.me = await api.request('/api/v1/me');
  $('login').hidden = true;
  $('app').hidden = false;
  $('who').textContent = `${state.me.display_name}（${state.me.role_label}）`;
  if (!dmap) {
    dmap = new DashboardMap($('map'), CONFIG, {
      drill: (code) => go(code),
      household: (id) => openHousehold(id),
      issue: (id) => openIssue(id),
      status,
      describe: (item) => describe(item),
    });
    if (CONFIG.tianditu_key) $('basemap-toggle').hidden = false;
  }
  syncPeriodForm();
  const code = readHash() || rootCode();
  if (!location.hash) history.replaceState(null, '', `#/${code}?${new URLSearchParams(periodParams())}`);
  await load(code);
}

// -- period selector ---------------------------------------------------------------------------

function syncPeriodForm() {
  const p = state.period;
  $('period-kind').value = p.kind;
  $('period-date').value = p.date || shanghaiToday();
  $('period-from').value = p.from || addDays(shanghaiToday(), -29);
  $('period-to').value = p.to || shanghaiToday();
  $('period-date').hidden = p.kind === 'range';
  $('period-range').hidden = p.kind !== 'range';
}

$('period-kind').addEventListener('change', () => {
  state.period.kind = $('period-kind').value;
  syncPeriodForm();
});

$('period-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const kind = $('period-kind').value;
  state.period = {
    kind,
    date: $('period-date').value || shanghaiToday(),
    from: kind === 'range' ? $('period-from').value : null,
    to: kind === 'range' ? $('period-to').value : null,
  };
  if (kind === 'range' && (!state.period.from || !state.period.to)) return toast('请选择起止日期');
  go(state.code);
  return undefined;
});

// -- loading a unit ----------------------------------------------------------------------------

async function load(code) {
  const seq = ++state.loads;
  document.body.dataset.state = 'loading';
  state.code = code;
  const level = levelOf(code);
  const base = `/api/v1/dashboard/${code}`;
  const p = periodParams();
  const scorePeriod = { period: state.period.kind === 'week' ? 'week' : 'month', date: state.period.kind === 'range' ? state.period.to : state.period.date };
  try {
    const [summary, children, flags, issues, trend, members, grids] = await Promise.all([
      api.request(`${base}/summary`, p),
      api.request(`${base}/children`, p),
      api.request(`${base}/flags`, p),
      api.request(`${base}/issues`, p),
      api.request(`${base}/trend`, trendParams()),
      api.request(`${base}/scores`, { of: 'member', limit: 50, ...scorePeriod }),
      api.request(`${base}/scores`, { of: 'grid', limit: 50, ...scorePeriod }),
    ]);
    if (seq !== state.loads) return;
    state.summary = summary;
    state.children = children.items;
    state.names.set(code, summary.unit.name);
    for (const item of children.items) if (item.code) state.names.set(item.code, item.name);
    renderHeader(summary);
    renderKpis(summary);
    charts.contacts(summary.contacts);
    charts.visits(summary.visits);
    charts.flags(flags);
    charts.issueStates(issues);
    charts.issueCategories(issues);
    charts.trend(trend);
    renderChildren(children);
    renderScores(members, grids);
    await renderCrumbs(code);
    const [, openIssues] = await Promise.all([
      level === 'village' || level === 'grid' ? renderHouseholds(code, level) : hideHouseholds(),
      loadOpenIssues(),
    ]);
    if (seq !== state.loads) return;
    renderIssues(openIssues.filter((i) => inUnit(i, code)));
    await dmap.show(level, code);
    paintMap();
    dmap.setIssues(issueCollection(openIssues.filter((i) => inUnit(i, code))));
    await loadQa();
    await dmap.idle();
    if (seq !== state.loads) return;
    status(`数据截至 ${fmtTime(summary.as_of)}`);
    document.body.dataset.unit = code;
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (seq !== state.loads) return;
    document.body.dataset.state = 'error';
    if (err.status === 404) toast('无此单位或不在您的权限范围内');
    else if (err.status !== 401) toast(err.message);
  }
}

function renderHeader(summary) {
  $('unit-title').replaceChildren(
    `${summary.unit.name}（${summary.unit.level_label}）`,
    ' ',
    badge(summary.warning.colour, `三色预警：${COLOUR_LABEL[summary.warning.colour]}`),
  );
  $('unit-badge').replaceChildren(badge(summary.warning.colour));
  $('period-label').textContent = `${summary.period.label} · 代码 ${summary.unit.code}`;
  $('children-title').textContent = summary.unit.level === 'village' ? '网格' : summary.unit.level === 'grid' ? '下级单位（网格无下级）' : `下级${summary.unit.level === 'county' ? '乡镇' : '村'}`;
}

function renderKpis(s) {
  const cards = [
    ['contacts.households', '在册户数', num(s.contacts.households)],
    ['contacts.coverage', '联系户覆盖率', pct(s.contacts.coverage)],
    ['contacts.uncovered', '未落实联系户', num(s.contacts.uncovered)],
    ['visits.counted', '计入走访', num(s.visits.counted)],
    ['visits.coverage', '走访覆盖率', pct(s.visits.coverage)],
    ['visits.overdue', '超期未访户', num(s.visits.overdue)],
    ['visits.due_soon', '7 天内到期', num(s.visits.due_soon)],
    ['visits.flagged', '被标记走访', num(s.visits.flagged)],
    ['visits.rejected', '驳回走访', num(s.visits.rejected)],
    ['issues.total', '本期事件', num(s.issues.total)],
    ['issues.closure_rate', '结案率', pct(s.issues.closure_rate)],
    ['issues.on_time_rate', '按期结案率', pct(s.issues.on_time_rate)],
    ['issues.rework_rate', '返工率', pct(s.issues.rework_rate)],
    ['issues.extension_rate', '延期率', pct(s.issues.extension_rate)],
    ['issues.in_grid_rate', '网格内解决率', pct(s.issues.in_grid_rate)],
    ['issues.satisfaction', '满意度', s.issues.satisfaction === null ? '—' : s.issues.satisfaction.toFixed(2)],
    ['issues.open', '未办结', num(s.issues.open)],
    ['issues.open_overdue', '已超期事件', num(s.issues.open_overdue)],
  ];
  const warn = h(
    'div',
    { class: 'kpi warning' },
    h('span', { class: 'kpi-label' }, '三色预警'),
    ...Object.entries(s.warning.parts).map(([part, colour]) => h('span', { class: 'kpi-part' }, PART_LABEL[part] || part, ' ', badge(colour))),
  );
  $('kpi-cards').replaceChildren(
    warn,
    ...cards.map(([key, label, value]) => h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, label), h('strong', { class: 'kpi-value', dataset: { figure: key } }, value))),
  );
}

async function renderCrumbs(code) {
  const root = rootCode();
  const codes = [];
  for (const len of [6, 9, 12, 15]) if (len >= root.length && len <= code.length) codes.push(code.slice(0, len));
  await Promise.all(
    codes
      .filter((c) => !state.names.has(c) && c.length < 15)
      .map((c) =>
        api
          .request(`/api/v1/units/${c}`, { geometry: false })
          .then((u) => state.names.set(c, u.name))
          .catch(() => state.names.set(c, c)),
      ),
  );
  const nav = $('crumbs');
  nav.replaceChildren();
  codes.forEach((c, i) => {
    if (i) nav.append(h('span', { class: 'sep' }, '›'));
    const label = `${state.names.get(c) || c}`;
    nav.append(
      c === code
        ? h('span', { class: 'crumb current', dataset: { code: c } }, label)
        : h('a', { href: `#/${c}?${new URLSearchParams(periodParams())}`, class: 'crumb', dataset: { code: c } }, label),
    );
  });
}

function describe(item) {
  return `户数 ${num(item.contacts.households)} · 联系户覆盖 ${pct(item.contacts.coverage)} · 走访覆盖 ${pct(item.visits.coverage)} · 超期 ${num(item.visits.overdue)} · 预警 ${COLOUR_LABEL[item.warning.colour]}`;
}

function renderChildren(children) {
  const table = $('children');
  const head = h('tr', {}, ['名称', '预警', '户数', '联系户覆盖', '计入走访', '走访覆盖', '超期户', '被标记', '事件', '结案率', '未办结 / 超期'].map((t) => h('th', {}, t)));
  const rows = children.items.map((item) =>
    h(
      'tr',
      { class: item.code ? 'clickable' : '', dataset: { code: item.code || '' }, onclick: item.code ? () => go(item.code) : null },
      h('td', {}, item.code ? h('a', { href: `#/${item.code}?${new URLSearchParams(periodParams())}` }, item.name) : item.name),
      h('td', {}, badge(item.warning.colour)),
      h('td', { dataset: { figure: 'contacts.households' } }, num(item.contacts.households)),
      h('td', { dataset: { figure: 'contacts.coverage' } }, pct(item.contacts.coverage)),
      h('td', { dataset: { figure: 'visits.counted' } }, num(item.visits.counted)),
      h('td', { dataset: { figure: 'visits.coverage' } }, pct(item.visits.coverage)),
      h('td', { dataset: { figure: 'visits.overdue' } }, num(item.visits.overdue)),
      h('td', {}, num(item.visits.flagged)),
      h('td', {}, num(item.issues.total)),
      h('td', {}, pct(item.issues.closure_rate)),
      h('td', {}, `${num(item.issues.open)} / ${num(item.issues.open_overdue)}`),
    ),
  );
  table.replaceChildren(h('thead', {}, head), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 11, class: 'muted' }, '没有下级单位'))));
}

function scoreTable(id, scores, nameOf) {
  const head = h('tr', {}, ['#', '名称', '积分', '联系户/户数', '已访户', '覆盖率', '上报事件', '按期结案', '超期户', '驳回走访'].map((t) => h('th', {}, t)));
  const rows = scores.items.map((r, i) =>
    h(
      'tr',
      {},
      h('td', {}, i + 1),
      h('td', {}, nameOf(r)),
      h('td', { class: 'strong' }, r.score.toFixed(1)),
      h('td', {}, r.parts.assigned),
      h('td', {}, r.parts.households_visited),
      h('td', {}, pct(r.parts.coverage)),
      h('td', {}, r.parts.issues_reported),
      h('td', {}, r.parts.issues_closed_on_time),
      h('td', {}, r.parts.overdue),
      h('td', {}, r.parts.rejected_visits),
    ),
  );
  $(id).replaceChildren(h('thead', {}, head), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 10, class: 'muted' }, '暂无'))));
}

function renderScores(members, grids) {
  $('score-formula').textContent = `${members.period.label}：${members.formula.text}`;
  scoreTable('scores-member', members, (r) => r.name || `党员 #${r.id}`);
  scoreTable('scores-grid', grids, (r) => state.names.get(r.grid_code) || r.name || r.grid_code);
}

function hideHouseholds() {
  $('households-card').hidden = true;
}

async function renderHouseholds(code, level) {
  const params = level === 'grid' ? { grid_code: code } : { unit_code: code };
  const page = await api.request('/api/v1/households', { ...params, limit: 200, geometry: false });
  const head = h('tr', {}, ['编号', '户主', '地址', '网格', '人数', '重点人群', ''].map((t) => h('th', {}, t)));
  const rows = page.items.map((hh) =>
    h(
      'tr',
      { dataset: { household: hh.id } },
      h('td', {}, hh.external_id || hh.id),
      h('td', {}, hh.head_name),
      h('td', {}, hh.address || hh.hamlet || '—'),
      h('td', {}, hh.grid_name || '未入网格'),
      h('td', {}, hh.size),
      h('td', {}, hh.tags.join('、') || '—'),
      h('td', {}, h('button', { type: 'button', class: 'link', dataset: { household: hh.id }, onclick: () => openHousehold(hh.id) }, '一户一档')),
    ),
  );
  const more = page.next ? h('caption', { class: 'muted small' }, `仅显示前 ${page.items.length} 户；地图上点击住户可查看其余住户的档案`) : null;
  $('households').replaceChildren(...(more ? [more] : []), h('thead', {}, head), h('tbody', {}, rows));
  $('households-card').hidden = false;
}

// -- issues --------------------------------------------------------------------------------------

async function loadOpenIssues() {
  if (state.issues) return state.issues;
  if (!state.categories.size) {
    const cats = await api.request('/api/v1/issues/categories').catch(() => []);
    for (const c of cats) state.categories.set(c.code, c.name);
  }
  const out = [];
  let next = '/api/v1/issues';
  let params = { limit: 1000 };
  for (let page = 0; next && page < 5; page += 1) {
    const body = await api.request(next, params);
    out.push(...body.items.filter((i) => !OPEN_EXCLUDED.has(i.state)));
    next = body.next;
    params = {};
  }
  state.issues = out;
  setTimeout(() => (state.issues = null), 60_000); // re-read at most once a minute
  return out;
}

function inUnit(issue, code) {
  return code.length === 15 ? issue.grid_code === code : issue.village_code.startsWith(code);
}

function alarm(issue) {
  const due = Date.parse(issue.due_at);
  const now = Date.now();
  if (due < now) return 'red';
  const share = CONFIG.issue_due_soon_share ?? 0.25;
  return due - now < share * issue.sla_hours * 3600_000 ? 'yellow' : 'green';
}

function issueCollection(issues) {
  return {
    type: 'FeatureCollection',
    features: issues.map((i) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: i.location },
      properties: { id: i.id, alarm: alarm(i), title: `${state.categories.get(i.category_code) || i.category_code} · ${charts.STATE_LABEL[i.state] || i.state}` },
    })),
  };
}

function renderIssues(issues) {
  const head = h('tr', {}, ['编号', '类别', '状态', '层级', '办理期限', '预警', '描述'].map((t) => h('th', {}, t)));
  const rows = issues
    .slice()
    .sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at))
    .slice(0, 100)
    .map((i) =>
      h(
        'tr',
        { class: 'clickable', dataset: { issue: i.id }, onclick: () => openIssue(i.id) },
        h('td', {}, `#${i.id}`),
        h('td', {}, state.categories.get(i.category_code) || i.category_code),
        h('td', {}, charts.STATE_LABEL[i.state] || i.state),
        h('td', {}, charts.LEVEL_LABEL[i.level] || i.level),
        h('td', {}, fmtTime(i.due_at)),
        h('td', {}, badge(alarm(i), { red: '已超期', yellow: '即将到期', green: '正常' }[alarm(i)])),
        h('td', { class: 'clip' }, i.description),
      ),
    );
  $('issues').replaceChildren(h('thead', {}, head), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, '没有未办结事件'))));
}

// -- map ---------------------------------------------------------------------------------------

function ramp(v, invert = false) {
  if (v === null || v === undefined) return '#bdbdbd';
  const x = Math.max(0, Math.min(1, invert ? 1 - v : v));
  return RAMP[Math.min(RAMP.length - 1, Math.floor(x * RAMP.length))];
}

const FIGURES = {
  contact: { label: '联系户覆盖率', value: (i) => i.contacts.coverage, colour: (i) => ramp(i.contacts.coverage) },
  visit: { label: '走访覆盖率', value: (i) => i.visits.coverage, colour: (i) => ramp(i.visits.coverage) },
  overdue: { label: '超期户占比', value: (i) => i.warning.overdue_share, colour: (i) => ramp(i.warning.overdue_share === null ? null : Math.min(1, i.warning.overdue_share * 2), true) },
  warning: { label: '三色预警', value: (i) => i.warning.colour, colour: (i) => WARN[i.warning.colour] },
};

function paintMap() {
  const figure = FIGURES[$('figure').value];
  const level = levelOf(state.code);
  const items = level === 'grid' ? [{ ...state.summary, code: state.code, name: state.summary.unit.name }] : state.children;
  dmap.colourChildren(items, figure.colour);
  const legend = $('legend');
  if (figure === FIGURES.warning) {
    legend.replaceChildren(h('span', {}, figure.label, '：'), ...Object.entries(WARN).map(([k, c]) => h('span', { class: 'swatch-item' }, h('i', { class: 'swatch', style: `background:${c}` }), COLOUR_LABEL[k])));
  } else {
    const invert = figure === FIGURES.overdue;
    const steps = RAMP.map((c, i) => {
      const lo = i / RAMP.length;
      const hi = (i + 1) / RAMP.length;
      const text = invert ? `${((1 - hi) * 50).toFixed(0)}–${((1 - lo) * 50).toFixed(0)}%` : `${(lo * 100).toFixed(0)}–${(hi * 100).toFixed(0)}%`;
      return h('span', { class: 'swatch-item' }, h('i', { class: 'swatch', style: `background:${c}` }), text);
    });
    legend.replaceChildren(h('span', {}, figure.label, '：'), ...(invert ? steps.reverse() : steps), h('span', { class: 'swatch-item' }, h('i', { class: 'swatch', style: 'background:#bdbdbd' }), '无数据'));
  }
}

$('figure').addEventListener('change', () => state.summary && paintMap());
$('show-households').addEventListener('change', (e) => dmap.visible(['households-point', 'households-cluster'], e.target.checked));
$('show-issues').addEventListener('change', (e) => dmap.visible(['issues-point'], e.target.checked));
$('show-basemap').addEventListener('change', (e) => dmap.visible(['tdt-vec', 'tdt-cva'], e.target.checked));
$('qa').addEventListener('change', () => loadQa());

async function loadQa() {
  const collection = $('qa').value;
  if (!collection) return dmap.setQa(null);
  const code = state.code;
  const params = { limit: 1000 };
  if (code.length === 12) params.village_code = code;
  if (code.length === 15) params.grid_code = code;
  try {
    const fc = await api.request(`/ogc/collections/${collection}/items`, params);
    dmap.setQa(fc);
    status(`质检：${fc.features.length} 处`);
  } catch (err) {
    // A check without the filter (e.g. grid_code) answers 400: fall back to the whole scope.
    const fc = await api.request(`/ogc/collections/${collection}/items`, { limit: 1000 }).catch(() => null);
    dmap.setQa(fc);
    if (!fc) toast(err.message);
  }
  return undefined;
}

// -- drawers: 一户一档 and an issue's timeline ----------------------------------------------------

const KIND_LABEL = { contact_start: '联系', contact_end: '交接', visit: '走访', issue: '事件' };
const REVIEW_LABEL = { clean: '正常', pending: '待审核', accepted: '审核通过', rejected: '驳回' };

function openDrawer(title, ...content) {
  $('drawer-title').textContent = title;
  $('drawer-body').replaceChildren(...content);
  const d = $('drawer');
  if (!d.open) d.showModal();
}

async function openHousehold(id) {
  try {
    const file = await api.request(`/api/v1/households/${id}/file`);
    const hh = file.household;
    const facts = h(
      'dl',
      { class: 'facts' },
      h('dt', {}, '户主'), h('dd', { dataset: { field: 'head_name' } }, hh.head_name),
      h('dt', {}, '电话'), h('dd', {}, hh.phone || '—'),
      h('dt', {}, '地址'), h('dd', {}, hh.address || '—'),
      h('dt', {}, '所属'), h('dd', {}, `${hh.village_name} · ${hh.grid_name || '未入网格'}`),
      h('dt', {}, '人数'), h('dd', {}, hh.size),
      h('dt', {}, '重点人群'), h('dd', {}, (hh.tags || []).join('、') || '—'),
    );
    const items = file.events.map((e) =>
      h(
        'li',
        { class: `event event-${e.kind}`, dataset: { kind: e.kind } },
        h('time', {}, fmtTime(e.at)),
        h('span', { class: 'event-kind' }, KIND_LABEL[e.kind] || e.kind),
        e.kind === 'issue' ? h('button', { type: 'button', class: 'link', onclick: () => openIssue(e.ref.issue_id) }, e.title) : h('span', {}, e.title),
        e.review_status ? h('span', { class: `review review-${e.review_status}` }, REVIEW_LABEL[e.review_status] || e.review_status) : null,
        e.flags && e.flags.length ? h('span', { class: 'muted' }, e.flags.map((f) => charts.FLAG_LABEL[f] || f).join('、')) : null,
        e.notes ? h('p', { class: 'muted small' }, e.notes) : null,
        e.note ? h('p', { class: 'muted small' }, e.note) : null,
      ),
    );
    openDrawer(`一户一档：${hh.head_name}`, facts, h('h4', {}, `时间线（${file.events.length} 条）`), h('ol', { class: 'timeline', id: 'household-timeline' }, items.length ? items : h('li', { class: 'muted' }, '暂无记录')));
  } catch (err) {
    toast(err.message);
  }
}

async function openIssue(id) {
  try {
    const issue = await api.request(`/api/v1/issues/${id}`);
    const facts = h(
      'dl',
      { class: 'facts' },
      h('dt', {}, '类别'), h('dd', {}, state.categories.get(issue.category_code) || issue.category_code),
      h('dt', {}, '状态'), h('dd', { dataset: { field: 'state' } }, charts.STATE_LABEL[issue.state] || issue.state),
      h('dt', {}, '层级'), h('dd', {}, charts.LEVEL_LABEL[issue.level] || issue.level),
      h('dt', {}, '上报'), h('dd', {}, fmtTime(issue.created_at)),
      h('dt', {}, '办理期限'), h('dd', {}, fmtTime(issue.due_at)),
      h('dt', {}, '描述'), h('dd', {}, issue.description),
    );
    const items = issue.timeline.map((e) =>
      h(
        'li',
        { class: 'event event-issue' },
        h('time', {}, fmtTime(e.at)),
        h('span', { class: 'event-kind' }, charts.ACTION_LABEL[e.action] || e.action),
        h('span', {}, `${e.from_state ? `${charts.STATE_LABEL[e.from_state] || e.from_state} → ` : ''}${charts.STATE_LABEL[e.to_state] || e.to_state}`),
        e.from_level && e.from_level !== e.to_level ? h('span', { class: 'muted' }, `层级 ${charts.LEVEL_LABEL[e.from_level]} → ${charts.LEVEL_LABEL[e.to_level]}`) : null,
        e.note ? h('p', { class: 'muted small' }, e.note) : null,
      ),
    );
    openDrawer(`事件 #${issue.id}`, facts, h('h4', {}, '办理时间线'), h('ol', { class: 'timeline', id: 'issue-timeline' }, items));
  } catch (err) {
    toast(err.message);
  }
}

// -- the ledger (台账) -----------------------------------------------------------------------------

$('ledger').addEventListener('click', async () => {
  try {
    const response = await api.request(`/api/v1/dashboard/${state.code}/ledger.xlsx`, periodParams(), { raw: true });
    const blob = await response.blob();
    const disposition = response.headers.get('content-disposition') || '';
    const match = /filename\*=UTF-8''([^;]+)/.exec(disposition);
    const name = match ? decodeURIComponent(match[1]) : `台账-${state.code}.xlsx`;
    const a = h('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  } catch (err) {
    toast(err.message);
  }
});

// -- start ---------------------------------------------------------------------------------------

if (api.loggedIn()) start().catch(() => showLogin());
else showLogin();
