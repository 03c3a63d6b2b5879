// The dashboard's panels as ECharts charts (canvas renderer: text is drawn with the system's
// fonts, nothing is fetched).
import * as echarts from './vendor/echarts/6.1.0/echarts.esm.min.mjs';

export const STATE_LABEL = {
  REPORTED: '已上报',
  ACCEPTED: '已立案',
  ASSIGNED: '已派遣',
  IN_PROGRESS: '处置中',
  RESOLVED: '已处置',
  VERIFIED: '已核查',
  CLOSED: '已结案',
  SELF_RESOLVED: '就地解决',
  ON_HOLD: '延期中',
  RETURNED: '已退回',
  REWORK: '返工',
  REJECTED: '不予受理',
  MERGED: '已合并',
  CANCELLED: '已撤销',
};
export const ACTION_LABEL = {
  report: '上报',
  accept: '立案',
  self_resolve: '就地解决',
  reject: '不予受理',
  merge: '合并',
  cancel: '撤销',
  assign: '派遣',
  start: '开始处置',
  return: '退回',
  hold: '延期',
  resume: '恢复办理',
  resolve: '处置反馈',
  verify: '核查',
  rework: '返工',
  close: '结案',
  reopen: '重新办理',
  escalate: '升级',
};
export const LEVEL_LABEL = { 1: '网格', 2: '村', 3: '乡镇', 4: '县' };
export const FLAG_LABEL = {
  far_from_household: '距住户过远',
  poor_accuracy: '定位精度差',
  impossible_speed: '移动速度异常',
  future_visited_at: '走访时间在未来',
  late_upload: '补录过晚',
  no_location: '无定位',
  photo_reused: '照片重复使用',
  burst: '短时集中录入',
};

const COLOURS = ['#2e7d32', '#1976d2', '#f9a825', '#d32f2f', '#6a1b9a', '#00838f', '#5d4037', '#ef6c00'];
const charts = new Map();

function chart(id) {
  let c = charts.get(id);
  if (!c) {
    c = echarts.init(document.getElementById(id), null, { renderer: 'canvas' });
    charts.set(id, c);
  }
  return c;
}

window.addEventListener('resize', () => charts.forEach((c) => c.resize()));

function draw(id, option) {
  chart(id).setOption({ color: COLOURS, animation: false, tooltip: { trigger: 'item' }, ...option }, true);
}

const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);

export function contacts(c) {
  draw('chart-contacts', {
    title: { text: pct(c.coverage), subtext: '有主联系党员的户', left: 'center', top: '38%' },
    series: [
      {
        type: 'pie',
        radius: ['55%', '75%'],
        label: { formatter: '{b}\n{c} 户' },
        data: [
          { name: '已落实', value: c.with_primary, itemStyle: { color: '#2e7d32' } },
          { name: '未落实', value: c.uncovered, itemStyle: { color: '#d32f2f' } },
        ],
      },
    ],
  });
}

export function visits(v) {
  const names = ['走访记录', '计入', '待审核', '审核通过', '驳回', '被标记', '已访户', '超期户', '7天内到期', '从未走访'];
  const values = [v.visits, v.counted, v.pending, v.accepted, v.rejected, v.flagged, v.households_visited, v.overdue, v.due_soon, v.never_visited];
  const colours = ['#1976d2', '#2e7d32', '#f9a825', '#43a047', '#d32f2f', '#ef6c00', '#00838f', '#c62828', '#fbc02d', '#757575'];
  draw('chart-visits', {
    tooltip: { trigger: 'axis' },
    grid: { left: 40, right: 10, top: 20, bottom: 60 },
    xAxis: { type: 'category', data: names, axisLabel: { interval: 0, rotate: 35 } },
    yAxis: { type: 'value', minInterval: 1 },
    series: [{ type: 'bar', data: values.map((value, i) => ({ value, itemStyle: { color: colours[i] } })), label: { show: true, position: 'top' } }],
  });
}

export function flags(breakdown) {
  const rows = breakdown.items;
  draw('chart-flags', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 40, right: 10, top: 30, bottom: 50 },
    xAxis: { type: 'category', data: rows.map((r) => FLAG_LABEL[r.flag] || r.flag), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: 'value', minInterval: 1 },
    series: [
      { name: '待审核', type: 'bar', stack: 'f', data: rows.map((r) => r.pending), itemStyle: { color: '#f9a825' } },
      { name: '审核通过', type: 'bar', stack: 'f', data: rows.map((r) => r.accepted), itemStyle: { color: '#2e7d32' } },
      { name: '驳回', type: 'bar', stack: 'f', data: rows.map((r) => r.rejected), itemStyle: { color: '#d32f2f' } },
    ],
    graphic: rows.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: '本期没有被标记的走访', fill: '#888' } }],
  });
}

export function issueStates(breakdown) {
  draw('chart-issue-state', {
    legend: { type: 'scroll', bottom: 0 },
    series: [
      {
        type: 'pie',
        radius: ['35%', '65%'],
        label: { formatter: '{b}：{c}' },
        data: breakdown.by_state.map((r) => ({ name: STATE_LABEL[r.key] || r.key, value: r.issues })),
      },
    ],
    graphic: breakdown.by_state.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: '本期没有事件', fill: '#888' } }],
  });
}

export function issueCategories(breakdown) {
  const cats = breakdown.by_category;
  const levels = breakdown.by_level;
  draw('chart-issue-category', {
    tooltip: { trigger: 'axis' },
    grid: [
      { left: 90, right: '45%', top: 10, bottom: 20 },
      { left: '65%', right: 10, top: 10, bottom: 20 },
    ],
    xAxis: [
      { type: 'value', gridIndex: 0, minInterval: 1 },
      { type: 'category', gridIndex: 1, data: levels.map((r) => LEVEL_LABEL[r.key] || r.key) },
    ],
    yAxis: [
      { type: 'category', gridIndex: 0, data: cats.map((r) => r.name || r.key) },
      { type: 'value', gridIndex: 1, minInterval: 1 },
    ],
    series: [
      { name: '按类别', type: 'bar', xAxisIndex: 0, yAxisIndex: 0, data: cats.map((r) => r.issues), itemStyle: { color: '#1976d2' } },
      { name: '按层级', type: 'bar', xAxisIndex: 1, yAxisIndex: 1, data: levels.map((r) => r.issues), itemStyle: { color: '#6a1b9a' } },
    ],
    graphic: cats.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: '本期没有事件', fill: '#888' } }],
  });
}

export function trend(t) {
  const s = t.series;
  const line = (name, key, colour, axis = 0) => ({ name, type: 'line', yAxisIndex: axis, data: s.map((p) => p[key]), itemStyle: { color: colour }, showSymbol: s.length < 40 });
  draw('chart-trend', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 45, right: 45, top: 35, bottom: 30 },
    xAxis: { type: 'category', data: s.map((p) => p.start) },
    yAxis: [
      { type: 'value', name: '走访', minInterval: 1 },
      { type: 'value', name: '事件', minInterval: 1 },
    ],
    series: [
      line('计入走访', 'counted', '#2e7d32'),
      line('已访户', 'households', '#00838f'),
      line('被标记', 'flagged', '#ef6c00'),
      line('驳回', 'rejected', '#d32f2f'),
      line('上报事件', 'issues_reported', '#1976d2', 1),
      line('结案事件', 'issues_closed', '#6a1b9a', 1),
    ],
  });
}

export { pct };
