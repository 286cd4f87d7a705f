// The coverage map page (`/map`). It talks to belong only over HTTP: vector tiles and TileJSON
// (`/tiles/...`), the coverage summary, the ranked uncovered blocks, coverage over time and the
// roll-ups (`/coverage...`), and OGC API Features items for details and downloads. Every URL is
// relative to this page, so the page works unchanged behind a proxy that serves belong under a
// path prefix.

import * as maplibregl from './vendor/maplibre-gl.mjs';
import { $, el, num, plural } from './dom.js';
import { RollupTable, groupingLabel, tractName } from './rollup.js';
import { TrendChart } from './trend.js';

const url = (path) => new URL(path, document.baseURI).href;

// Colours. Covered blocks are teal, darker with more ambassadors; uncovered ones orange, paler
// when they have some ambassadors but fewer than the target. Teal against orange stays apart
// for the common colour-vision deficiencies.
const COVERED = ['#5cc0a5', '#23977d', '#0b6552'];
const UNCOVERED = '#f2884a';
const PARTIAL = '#fdb47d';
const READINESS = ['#edf0f8', '#c3cbe6', '#95a3d3', '#6a79bd', '#3f4c9f'];
const NO_DATA = '#e3e5e8';
const CATEGORIES = {
  partner: ['Partner organisation', '#3b5ba9'],
  school: ['School', '#c99700'],
  clinic: ['Clinic', '#d6336c'],
  food_bank: ['Food bank', '#7048e8'],
  shelter: ['Shelter', '#8c5a2b'],
  park: ['Park', '#2b8a3e'],
  library: ['Library', '#1c7ed6'],
};
const OTHER = ['Other', '#5c6670'];
// Distance to the nearest resource of a category (the resource-access layer): pale when near,
// dark red when far; walking distance (800 m) is the second break.
const ACCESS_BREAKS = [400, 800, 1600, 3200];
const ACCESS = ['#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'];

const RECRUIT_PAGE = 50;
const REFRESH_MS = 60_000;
// Daily points up to about half a year; weekly ones beyond, unless the reader chooses.
const DAILY_MAX = 190;

const state = {
  target: 1,
  summary: null,
  uncovered: [],
  shown: 0,
  selected: null,
  lastRefresh: 0,
  returnFocus: null,
  coverageError: false,
  // Coverage over time: the interval the reader chose (null: automatic) and the one in use.
  trendChoice: null,
  trendInterval: 'day',
  trendRows: null,
  /** The day the blocks are shown as of (YYYY-MM-DD), or null for now; the slider's days. */
  asOf: null,
  asOfDays: null,
  // Roll-ups: the grouping shown, the groupings available, the rows, the tract outlined.
  rollupBy: 'tract',
  groupings: null,
  rollupRows: null,
  group: null,
  // The blocks' fill opacity (lower over a basemap) and the catchment's bbox.
  fillOpacity: 0.85,
  extent: null,
};

class HttpError extends Error {}

async function fetchJson(path) {
  const res = await fetch(url(path), { headers: { Accept: 'application/json' } });
  if (!res.ok) {
    let detail = res.statusText;
    try {
      detail = (await res.json()).detail || detail;
    } catch {
      // not a problem+json body: the status text says enough
    }
    throw new HttpError(`${path}: ${res.status} ${detail}`);
  }
  return res.json();
}

async function fetchText(path) {
  const res = await fetch(url(path));
  if (!res.ok) throw new HttpError(`${path}: ${res.status} ${res.statusText}`);
  return res.text();
}

function showStatus(message, { error = false, timeout = 0 } = {}) {
  const el = $('map-status');
  el.textContent = message;
  el.classList.toggle('error', error);
  el.hidden = !message;
  clearTimeout(showStatus.timer);
  if (timeout) showStatus.timer = setTimeout(() => { el.hidden = true; }, timeout);
}

function category(c) {
  return CATEGORIES[c] || [c ? c.replace(/_/g, ' ').replace(/^./, (s) => s.toUpperCase()) : OTHER[0], OTHER[1]];
}

// ---------------------------------------------------------------------------------------------
// Style

function coverageColor(target) {
  const ambassadors = ['coalesce', ['get', 'ambassadors'], 0];
  return [
    'case',
    ['==', ['get', 'covered'], true],
    ['step', ambassadors, COVERED[0], target + 1, COVERED[1], target + 2, COVERED[2]],
    ['>', ambassadors, 0], PARTIAL,
    UNCOVERED,
  ];
}

function readinessColor(breaks) {
  const expr = ['step', ['to-number', ['get', 'value']], READINESS[0]];
  breaks.forEach((b, i) => expr.push(b, READINESS[i + 1]));
  return expr;
}

function categoryColor() {
  const expr = ['match', ['get', 'category']];
  for (const [key, [, color]] of Object.entries(CATEGORIES)) expr.push(key, color);
  expr.push(OTHER[1]);
  return expr;
}

function basemapAttribution(template) {
  try {
    const host = new URL(template.replace(/[{}]/g, '')).hostname;
    if (host.endsWith('openstreetmap.org')) {
      return '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
    }
    return `Basemap: ${host}`;
  } catch {
    return 'Basemap';
  }
}

/** The blocks of census tract `tract`: their ids start with its 11 characters. */
function tractFilter(tract) {
  return ['==', ['slice', ['to-string', ['get', 'block_id']], 0, 11], tract];
}

// Layer ids per toggle, so a checkbox shows or hides its whole group.
const GROUPS = {
  blocks: ['blocks-fill', 'blocks-outline'],
  readiness: ['readiness-fill', 'readiness-nodata', 'readiness-outline'],
  resources: ['resources-circle'],
  access: ['access-fill', 'access-none'],
};

/** Fill colour of a block by its distance to the nearest resource of `category`. */
function accessColor(category) {
  const expr = ['step', ['to-number', ['get', `${category}_nearest_m`]], ACCESS[0]];
  ACCESS_BREAKS.forEach((b, i) => expr.push(b, ACCESS[i + 1]));
  return expr;
}

/** The blocks with a resource of `category` somewhere (the others are hatched). */
function accessFilter(category, has) {
  const f = ['has', `${category}_nearest_m`];
  return has ? f : ['!', f];
}

function buildStyle(config) {
  const basemap = config.basemap;
  const sources = {
    blocks: { type: 'vector', url: blocksTileJson(), promoteId: 'block_id' },
    readiness: { type: 'vector', url: url('tiles/school-readiness.json'), promoteId: 'block_id' },
    resources: { type: 'vector', url: url('tiles/resources.json'), promoteId: 'id' },
    access: { type: 'vector', url: url('tiles/resource-access.json'), promoteId: 'block_id' },
  };
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#eceae4' } }];
  if (basemap) {
    sources.basemap = {
      type: 'raster', tiles: [basemap], tileSize: 256, maxzoom: 19, attribution: basemapAttribution(basemap),
    };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap', paint: { 'raster-saturation': -0.6 } });
  }
  const fillOpacity = basemap ? 0.62 : 0.85;
  state.fillOpacity = fillOpacity;
  // Block edges drawn white and widening with zoom read as streets when there is no basemap.
  const edgeWidth = ['interpolate', ['linear'], ['zoom'], 11, 0.4, 14, 1.4, 17, 3.5];
  layers.push(
    {
      id: 'blocks-fill', type: 'fill', source: 'blocks', 'source-layer': 'blocks',
      paint: { 'fill-color': coverageColor(config.target), 'fill-opacity': fillOpacity },
    },
    {
      id: 'readiness-fill', type: 'fill', source: 'readiness', 'source-layer': 'school-readiness',
      filter: ['has', 'value'], layout: { visibility: 'none' },
      paint: { 'fill-color': readinessColor(config.readinessBreaks), 'fill-opacity': basemap ? 0.75 : 0.95 },
    },
    {
      id: 'readiness-nodata', type: 'fill', source: 'readiness', 'source-layer': 'school-readiness',
      filter: ['!', ['has', 'value']], layout: { visibility: 'none' },
      paint: { 'fill-pattern': 'hatch', 'fill-opacity': basemap ? 0.8 : 1 },
    },
    {
      id: 'readiness-outline', type: 'line', source: 'readiness', 'source-layer': 'school-readiness',
      layout: { visibility: 'none', 'line-join': 'round' },
      paint: { 'line-color': '#ffffff', 'line-width': edgeWidth },
    },
    {
      id: 'access-fill', type: 'fill', source: 'access', 'source-layer': 'resource-access',
      filter: accessFilter(config.accessCategory, true), layout: { visibility: 'none' },
      paint: { 'fill-color': accessColor(config.accessCategory), 'fill-opacity': basemap ? 0.75 : 0.95 },
    },
    {
      id: 'access-none', type: 'fill', source: 'access', 'source-layer': 'resource-access',
      filter: accessFilter(config.accessCategory, false), layout: { visibility: 'none' },
      paint: { 'fill-pattern': 'hatch', 'fill-opacity': basemap ? 0.8 : 1 },
    },
    {
      id: 'blocks-outline', type: 'line', source: 'blocks', 'source-layer': 'blocks',
      layout: { 'line-join': 'round' },
      paint: { 'line-color': '#ffffff', 'line-width': edgeWidth, 'line-opacity': basemap ? 0.8 : 1 },
    },
    {
      // The blocks of the tract chosen in the roll-up table.
      id: 'blocks-group', type: 'line', source: 'blocks', 'source-layer': 'blocks',
      filter: tractFilter(''), layout: { 'line-join': 'round' },
      paint: { 'line-color': '#1e3a8a', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 1, 15, 2.2] },
    },
    {
      id: 'blocks-hover', type: 'line', source: 'blocks', 'source-layer': 'blocks',
      filter: ['==', ['get', 'block_id'], ''],
      paint: { 'line-color': '#1f2933', 'line-width': 1.5, 'line-opacity': 0.7 },
    },
    {
      id: 'blocks-selected-casing', type: 'line', source: 'blocks', 'source-layer': 'blocks',
      filter: ['==', ['get', 'block_id'], ''], layout: { 'line-join': 'round' },
      paint: { 'line-color': '#ffffff', 'line-width': 7 },
    },
    {
      id: 'blocks-selected', type: 'line', source: 'blocks', 'source-layer': 'blocks',
      filter: ['==', ['get', 'block_id'], ''], layout: { 'line-join': 'round' },
      paint: { 'line-color': '#1e3a8a', 'line-width': 3.5 },
    },
    {
      id: 'resources-circle', type: 'circle', source: 'resources', 'source-layer': 'resources',
      paint: {
        'circle-color': categoryColor(),
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 11, 2.5, 14, 5, 17, 8],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 11, 0.8, 15, 1.6],
      },
    },
  );
  return { version: 8, sources, layers };
}

/** A diagonal hatch for "no data", as an image MapLibre can use as a fill pattern. */
function hatchImage() {
  const ratio = 2;
  const size = 8 * ratio;
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const g = canvas.getContext('2d');
  g.fillStyle = NO_DATA;
  g.fillRect(0, 0, size, size);
  g.strokeStyle = '#a9b0b8';
  g.lineWidth = 1.3 * ratio;
  g.beginPath();
  for (const offset of [-size, 0, size]) {
    g.moveTo(offset, size);
    g.lineTo(offset + size, 0);
  }
  g.stroke();
  return { image: g.getImageData(0, 0, size, size), pixelRatio: ratio };
}

// ---------------------------------------------------------------------------------------------
// Legends

function swatch(color, extra = '') {
  return el('span', { class: `swatch ${extra}`.trim(), style: extra ? null : `background:${color}` });
}

function renderCoverageLegend(target) {
  const items = [
    [COVERED[0], `Covered: ${plural(target, 'ambassador')}`],
    [COVERED[1], `Covered: ${num.format(target + 1)} ambassadors`],
    [COVERED[2], `Covered: ${num.format(target + 2)} or more`],
  ];
  if (target > 1) items.push([PARTIAL, `Not covered: 1–${target - 1} ambassadors`]);
  items.push([UNCOVERED, 'Not covered: no ambassador']);
  $('legend-blocks').replaceChildren(...items.map(([c, label]) => el('li', {}, swatch(c), label)));
}

function renderResourceLegend(counts) {
  const keys = Object.keys(counts).sort((a, b) => counts[b] - counts[a] || a.localeCompare(b));
  const list = keys.length ? keys : Object.keys(CATEGORIES);
  $('legend-resources').replaceChildren(
    ...list.map((k) => {
      const [label, color] = category(k);
      return el(
        'li', {}, el('span', { class: 'dot', style: `background:${color}` }), label,
        counts[k] ? el('span', { class: 'count' }, num.format(counts[k])) : null,
      );
    }),
  );
}

/**
 * A legend of classes: one colour per class between `breaks` (labelled with `fmt`, the first
 * "<low> …", the last "… <high>"), then a hatched entry labelled `none`.
 */
function classLegend(id, colors, breaks, fmt, [low, high], none) {
  const items = colors.map((color, i) => {
    let label;
    if (i === 0) label = `${low} ${fmt(breaks[0])}`;
    else if (i === colors.length - 1) label = `${fmt(breaks[i - 1])} ${high}`;
    else label = `${fmt(breaks[i - 1])} – ${fmt(breaks[i])}`;
    return el('li', {}, swatch(color), label);
  });
  items.push(el('li', {}, swatch(null, 'hatch'), none));
  $(id).replaceChildren(...items);
}

function renderReadinessLegend(breaks, decimals) {
  classLegend('legend-readiness', READINESS, breaks, (v) => v.toFixed(decimals), ['below', 'and above'], 'No data');
}

function formatBreak(m) {
  return m >= 1000 ? `${num.format(m / 1000)} km` : `${num.format(m)} m`;
}

function renderAccessLegend(category) {
  const name = category ? categoryLabel(category).toLowerCase() : 'resource';
  classLegend('legend-access', ACCESS, ACCESS_BREAKS, formatBreak, ['under', 'or more'], `No ${name} at all`);
}

function categoryLabel(c) {
  return category(c)[0];
}

/** The category picker: every category of the resources layer, most resources first. */
function renderAccessPicker(counts) {
  const keys = Object.keys(counts).filter(Boolean).sort((a, b) => counts[b] - counts[a] || a.localeCompare(b));
  const select = $('access-category');
  select.replaceChildren(
    ...keys.map((k) => el('option', { value: k }, `${categoryLabel(k)} (${num.format(counts[k])})`)),
  );
  select.disabled = keys.length === 0;
  return keys[0] || '';
}

function showAccessCategory(category) {
  if (!map.getLayer('access-fill')) return;
  map.setPaintProperty('access-fill', 'fill-color', accessColor(category));
  map.setFilter('access-fill', accessFilter(category, true));
  map.setFilter('access-none', accessFilter(category, false));
  renderAccessLegend(category);
}

/** Quintile class breaks of the readiness values (from the layer's CSV). */
async function readinessBreaks() {
  const fallback = { breaks: [45, 50, 55, 60], decimals: 0 };
  try {
    const rows = parseCsv(await fetchText('collections/school-readiness/items?f=csv&limit=10000'));
    const col = rows[0]?.indexOf('value') ?? -1;
    const values = rows.slice(1).map((r) => parseFloat(r[col])).filter(Number.isFinite).sort((a, b) => a - b);
    if (col < 0 || values.length < 5) return fallback;
    const range = values[values.length - 1] - values[0];
    const decimals = range >= 20 ? 0 : range >= 2 ? 1 : 2;
    const scale = 10 ** decimals;
    const breaks = [1, 2, 3, 4].map((k) => Math.round(values[Math.floor((k * values.length) / 5)] * scale) / scale);
    // Equal neighbours (heavily tied data) would make an empty class: MapLibre wants strictly
    // increasing stops.
    for (let i = 1; i < breaks.length; i++) if (breaks[i] <= breaks[i - 1]) breaks[i] = breaks[i - 1] + 1 / scale;
    return { breaks, decimals };
  } catch {
    return fallback;
  }
}

/** Rows of a CSV document (RFC 4180 quoting). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function resourceCounts() {
  try {
    const fc = await fetchJson('collections/resources/items?f=geojson&limit=10000');
    const counts = {};
    for (const f of fc.features || []) {
      const c = f.properties?.category || '';
      counts[c] = (counts[c] || 0) + 1;
    }
    return counts;
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------
// Header numbers and the recruiting list

function renderSummary(s) {
  $('stat-coverage').textContent = `${(s.coverage_pct ?? 0).toFixed(1)}%`;
  $('stat-meter').style.width = `${Math.max(0, Math.min(100, s.coverage_pct ?? 0))}%`;
  $('stat-blocks').textContent = `${num.format(s.covered_blocks ?? 0)} / ${num.format(s.blocks ?? 0)}`;
  $('stat-uncovered-residents').textContent = num.format(s.residents_in_uncovered_blocks ?? 0);
  $('stat-ambassadors').textContent = num.format(s.ambassadors ?? 0);
  $('stats').setAttribute('aria-busy', 'false');
  const time = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  $('updated').textContent = `Updated ${time}`;
}

function recruitRow(row, i) {
  const id = String(row.block_id ?? '');
  const residents = Number(row.residents ?? 0);
  const ambassadors = Number(row.ambassadors ?? 0);
  const needs = Math.max(1, state.target - ambassadors);
  const detail = ambassadors > 0 ? `${ambassadors} of ${state.target} ambassadors` : `needs ${plural(needs, 'ambassador')}`;
  const button = el(
    'button',
    {
      type: 'button', class: 'recruit-row', dataset: { blockId: id },
    },
    // The accessible name is the visible text (WCAG 2.5.3), with a few words only a screen
    // reader hears to make it a sentence.
    el('span', { class: 'rank' }, el('span', { class: 'sr-only' }, 'Rank '), `#${row.rank ?? i + 1}`),
    el('span', { class: 'name' }, row.name || `Block ${id}`),
    el('span', { class: 'residents' }, el('span', { class: 'sr-only' }, ', '), num.format(residents), ' ',
      el('small', {}, residents === 1 ? 'resident' : 'residents')),
    el('span', { class: 'id' }, el('span', { class: 'sr-only' }, ', block '), id),
    recruitExtra(row) ? el('span', { class: 'extra' }, el('span', { class: 'sr-only' }, ', '), recruitExtra(row)) : null,
    el('span', { class: 'sr-only' }, `, ${detail}. Show on the map.`),
  );
  button.addEventListener('click', () => selectBlock(id, { fly: true, from: button }));
  return el('li', {}, button);
}

/** Priority and distance to the nearest ambassador, when the service ranks by priority. */
function recruitExtra(row) {
  const parts = [];
  if (Number.isFinite(row.priority)) parts.push(`Priority ${row.priority.toFixed(2)}`);
  const nearest = row.inputs?.nearest_ambassador_m ?? row.nearest_ambassadors?.[0]?.distance_m;
  if (Number.isFinite(nearest)) parts.push(`nearest ambassador ${formatDistance(nearest)}`);
  return parts.join(' · ');
}

function renderRecruitList() {
  const list = $('recruit-list');
  const rows = state.uncovered;
  const total = rows.length;
  const shown = Math.min(total, Math.max(state.shown, RECRUIT_PAGE));
  state.shown = shown;
  list.replaceChildren(...rows.slice(0, shown).map(recruitRow));
  if (!total) list.replaceChildren(el('li', { class: 'empty' }, 'Every block has its ambassadors.'));
  list.dataset.total = String(total);
  list.dataset.shown = String(shown);
  $('recruit-count').textContent = total ? num.format(total) : '';
  const order = rows.some((r) => Number.isFinite(r.priority)) ? 'highest recruiting priority first' : 'most residents first';
  $('recruit-hint').textContent = total
    ? `${plural(total, 'uncovered block')}, ${order}${shown < total ? ` (showing ${num.format(shown)})` : ''}. Choose one to zoom to it.`
    : 'No uncovered blocks.';
  const more = $('recruit-more');
  more.hidden = shown >= total;
  more.textContent = `Show ${num.format(Math.min(RECRUIT_PAGE, total - shown))} more`;
  markCurrentRow();
}

function markCurrentRow() {
  for (const b of document.querySelectorAll('.recruit-row')) {
    if (b.dataset.blockId === state.selected) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

let map;
let trend;
let rollup;

async function refresh({ reloadTiles = true } = {}) {
  const button = $('refresh');
  button.classList.add('spinning');
  state.lastRefresh = Date.now();
  // Coverage over time and the roll-up load beside the numbers, each showing its own errors.
  const others = Promise.all([refreshTrend(), refreshRollup()]);
  try {
    const [summary, uncovered] = await Promise.all([fetchJson('coverage'), fetchJson('coverage/uncovered')]);
    const changed = state.summary && JSON.stringify(summary) !== JSON.stringify(state.summary);
    const rows = Array.isArray(uncovered) ? uncovered : [];
    const listChanged = !state.summary || JSON.stringify(rows) !== JSON.stringify(state.uncovered);
    state.summary = summary;
    state.uncovered = rows;
    renderSummary(summary);
    if (state.coverageError) {
      state.coverageError = false;
      showStatus('');
    }
    // Redraw the list only when it changed, and keep the keyboard focus on the same block.
    if (listChanged) {
      const focused = document.activeElement?.closest?.('.recruit-row')?.dataset.blockId;
      renderRecruitList();
      if (focused) document.querySelector(`.recruit-row[data-block-id="${CSS.escape(focused)}"]`)?.focus();
    }
    // Coverage changed since the tiles were drawn: fetch them again so colours match numbers.
    // (A past day's tiles do not change.)
    if (changed && reloadTiles && !state.asOf && map?.getSource('blocks')) map.getSource('blocks').setUrl(blocksTileJson());
    if (changed) refreshCard();
  } catch (e) {
    state.coverageError = true;
    showStatus(`Could not load the coverage numbers (${e.message}).`, { error: true });
  } finally {
    await others;
    button.classList.remove('spinning');
  }
}

// ---------------------------------------------------------------------------------------------
// Coverage over time and the roll-up table

let trendRequest = 0;

/** Load `/coverage/history` (daily, or weekly for long histories or when chosen) and redraw. */
async function refreshTrend() {
  const token = ++trendRequest;
  let interval = state.trendChoice || state.trendInterval;
  try {
    let rows = await fetchJson(`coverage/history?interval=${interval}`);
    if (!state.trendChoice && interval === 'day' && Array.isArray(rows) && rows.length > DAILY_MAX) {
      interval = 'week';
      rows = await fetchJson('coverage/history?interval=week');
    }
    if (token !== trendRequest) return;
    updateAsOfRange(rows);
    rows = Array.isArray(rows) ? rows : [];
    const intervalChanged = interval !== state.trendInterval || !state.trendRows;
    state.trendInterval = interval;
    for (const radio of document.querySelectorAll('input[name="trend-interval"]')) radio.checked = radio.value === interval;
    $('trend-csv').href = url(`coverage/history?interval=${interval}&f=csv`);
    $('trend-csv').download = `coverage-history-${interval}.csv`;
    if (intervalChanged || JSON.stringify(rows) !== JSON.stringify(state.trendRows)) {
      state.trendRows = rows;
      trend.update(rows, interval);
    }
  } catch (e) {
    if (token === trendRequest) trend.error(`Could not load coverage over time (${e.message}).`);
  }
}

let rollupRequest = 0;

/** Load the groupings and the roll-up rows of the chosen one, and redraw what changed. */
async function refreshRollup() {
  const token = ++rollupRequest;
  try {
    const groupings = await fetchJson('coverage/rollup/layers');
    if (token !== rollupRequest) return;
    const list = Array.isArray(groupings) && groupings.length ? groupings : [{ name: 'tract', kind: 'tract' }];
    if (JSON.stringify(list) !== JSON.stringify(state.groupings)) {
      state.groupings = list;
      $('rollup-by').replaceChildren(...list.map((g) => el('option', { value: g.name }, groupingLabel(g))));
    }
    // The layer shown was removed: back to tracts.
    if (!list.some((g) => g.name === state.rollupBy)) state.rollupBy = list[0].name;
    $('rollup-by').value = state.rollupBy;
    const by = state.rollupBy;
    const rows = await fetchJson(`coverage/rollup?by=${encodeURIComponent(by)}`);
    if (token !== rollupRequest) return;
    const changed = by !== rollup.by || JSON.stringify(rows) !== JSON.stringify(state.rollupRows);
    state.rollupRows = rows;
    $('rollup-csv').href = url(`coverage/rollup?by=${encodeURIComponent(by)}&f=csv`);
    $('rollup-csv').download = `coverage-by-${by}.csv`;
    if (changed || !rollup.rendered) {
      rollup.update(rows, by, groupingLabel(list.find((g) => g.name === by) || { name: by }));
      rollup.rendered = true;
      rollupHint();
    }
  } catch (e) {
    if (token === rollupRequest) $('rollup-hint').textContent = `Could not load the roll-up (${e.message}).`;
  }
}

function rollupHint() {
  const hint = $('rollup-hint');
  if (state.rollupBy !== 'tract') {
    const g = state.groupings?.find((x) => x.name === state.rollupBy);
    hint.textContent = `Blocks count in the area holding their interior point${g?.source ? `; areas from ${g.source.split(/[\\/]/).pop()}` : ''}.`;
  } else if (state.group) {
    hint.textContent = `${tractName(state.group)} is outlined on the map. Choose it again to show every tract.`;
  } else {
    hint.textContent = 'Choose a tract to outline its blocks on the map.';
  }
}

/** Outline the blocks of tract `tract` (null: none) on the map, dim the others, and fly there. */
function showTract(tract) {
  state.group = tract;
  rollupHint();
  if (!map?.getLayer('blocks-group')) return;
  map.setFilter('blocks-group', tractFilter(tract || ''));
  map.setPaintProperty('blocks-fill', 'fill-opacity',
    tract ? ['case', tractFilter(tract), state.fillOpacity, state.fillOpacity * 0.35] : state.fillOpacity);
  if (!tract) return;
  if (window.matchMedia('(max-width: 760px)').matches) $('map').scrollIntoView({ block: 'start', behavior: 'smooth' });
  fitTract(tract);
}

/** The bounds of the tract's blocks in the tiles loaded now (null: none loaded). */
function tractBounds(tract) {
  const features = map.querySourceFeatures('blocks', { sourceLayer: 'blocks', filter: tractFilter(tract) });
  if (!features.length) return null;
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const f of features) {
    const [a, b, c, d] = bboxOf(f.geometry);
    minX = Math.min(minX, a); minY = Math.min(minY, b); maxX = Math.max(maxX, c); maxY = Math.max(maxY, d);
  }
  return [[minX, minY], [maxX, maxY]];
}

/**
 * Fly to the tract. Only the tiles in view are loaded, so the bounds found may be part of the
 * tract (or nothing, zoomed in elsewhere): look again once the map has settled, a few times.
 */
function fitTract(tract, attempt = 0) {
  if (state.group !== tract) return;
  const bounds = tractBounds(tract);
  const narrow = window.matchMedia('(max-width: 760px)').matches;
  const padding = narrow ? 30 : { top: 50, bottom: 50, left: $('block-card').hidden ? 50 : 350, right: 50 };
  const target = bounds || (state.extent && [[state.extent[0], state.extent[1]], [state.extent[2], state.extent[3]]]);
  if (!target) return;
  map.fitBounds(target, { padding, maxZoom: 16, duration: 900 });
  if (attempt >= 2) return;
  // `idle` comes after the flight and the tiles it needed (or, with nothing to do, after the
  // repaint asked for here).
  map.triggerRepaint();
  map.once('idle', () => {
    const again = tractBounds(tract);
    const grew = !bounds || (again && (again[0][0] < bounds[0][0] || again[0][1] < bounds[0][1]
      || again[1][0] > bounds[1][0] || again[1][1] > bounds[1][1]));
    if (grew) fitTract(tract, attempt + 1);
  });
}

// ---------------------------------------------------------------------------------------------
// Block details

function bboxOf(geometry) {
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      minX = Math.min(minX, c[0]); minY = Math.min(minY, c[1]);
      maxX = Math.max(maxX, c[0]); maxY = Math.max(maxY, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [minX, minY, maxX, maxY];
}

/** Great-circle distance in metres. */
function distance([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
}

function formatDistance(m) {
  return m < 950 ? `${Math.round(m / 10) * 10}\u00a0m` : `${(m / 1000).toFixed(1)}\u00a0km`;
}

/** The resources nearest to `center`: a bbox query that widens until it finds enough. */
async function nearestResources(center, wanted = 5) {
  const [lon, lat] = center;
  let radius = 600;
  let found = [];
  for (let attempt = 0; attempt < 4; attempt++, radius *= 2.5) {
    const dLat = radius / 111_320;
    const dLon = radius / (111_320 * Math.cos((lat * Math.PI) / 180));
    const bbox = [lon - dLon, lat - dLat, lon + dLon, lat + dLat].map((v) => v.toFixed(6)).join(',');
    const fc = await fetchJson(`collections/resources/items?f=geojson&limit=200&bbox=${bbox}`);
    found = (fc.features || [])
      .filter((f) => f.geometry?.type === 'Point')
      .map((f) => ({ ...f.properties, id: f.id, distance: distance(center, f.geometry.coordinates) }))
      .filter((r) => r.distance <= radius)
      .sort((a, b) => a.distance - b.distance);
    if (found.length >= wanted) break;
  }
  return found.slice(0, wanted);
}

function setSelected(id) {
  state.selected = id;
  const filter = ['==', ['get', 'block_id'], id || ''];
  if (map?.getLayer('blocks-selected')) {
    map.setFilter('blocks-selected', filter);
    map.setFilter('blocks-selected-casing', filter);
  }
  markCurrentRow();
}

function readinessOf(props) {
  const v = props.school_readiness ?? props.value;
  return v === undefined || v === null || v === '' || Number.isNaN(Number(v)) ? null : Number(v);
}

function renderBlockCard(p, { keepResources = false } = {}) {
  const id = String(p.block_id);
  $('block-title').textContent = p.name || `Block ${id}`;
  $('block-id').textContent = `Block ID ${id}`;
  const ambassadors = Number(p.ambassadors ?? 0);
  const covered = p.covered === true || p.covered === 'true';
  const status = $('block-status');
  status.className = `pill ${covered ? 'covered' : 'uncovered'}`;
  if (covered) status.textContent = `Covered · ${plural(ambassadors, 'ambassador')}`;
  else if (ambassadors > 0) status.textContent = `Not covered · ${ambassadors} of ${plural(state.target, 'ambassador')}`;
  else status.textContent = 'Not covered · no ambassador yet';
  $('block-residents').textContent = num.format(Number(p.residents ?? 0));
  $('block-ambassadors').textContent = num.format(ambassadors);
  const readiness = readinessOf(p);
  const r = $('block-readiness');
  r.textContent = readiness === null ? 'No data' : readiness.toFixed(1);
  r.classList.toggle('no-data', readiness === null);
  const row = covered ? null : state.uncovered.find((u) => String(u.block_id) === id);
  const extra = row ? [`Rank ${row.rank ?? state.uncovered.indexOf(row) + 1} to recruit in`, recruitExtra(row)].filter(Boolean) : [];
  $('block-rank').textContent = extra.join(' · ');
  $('block-rank').hidden = !extra.length;
  if (!keepResources) $('block-resources').replaceChildren(el('li', { class: 'muted' }, 'Loading…'));
}

// ---------------------------------------------------------------------------------------------
// Coverage as of a day: `datetime=` on the blocks' tiles and features gives each block's counts
// at the end of that day (UTC), as coverage over time counts them.

/** `?datetime=` for the chosen day, or nothing for now. */
const asOfQuery = () => (state.asOf ? `?datetime=${state.asOf}` : '');
/** TileJSON of the blocks, as of the chosen day. */
const blocksTileJson = () => url(`tiles/blocks.json${asOfQuery()}`);
/** One block's feature, as of the chosen day. */
const blockItem = (id) => `collections/blocks/items/${encodeURIComponent(id)}${asOfQuery()}`;

/** Every UTC day from the day before `first` (YYYY-MM-DD: before anything was counted) to today. */
function daysSince(first) {
  const days = [];
  const today = new Date().toISOString().slice(0, 10);
  const start = new Date(`${first}T00:00:00Z`);
  start.setUTCDate(start.getUTCDate() - 1);
  for (let d = start; days.length < 3700; d.setUTCDate(d.getUTCDate() + 1)) {
    const day = d.toISOString().slice(0, 10);
    if (day > today) break;
    days.push(day);
  }
  return days.length ? days : [today];
}

function dayLabel(day) {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString('en-US', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' });
}

/** Fit the slider to the history's days (kept on the chosen day, or on today). */
function updateAsOfRange(rows) {
  const box = $('as-of-box');
  if (!Array.isArray(rows) || !rows.length) {
    box.hidden = true;
    return;
  }
  state.asOfDays = daysSince(rows[0].date);
  const input = $('as-of');
  input.max = String(state.asOfDays.length - 1);
  const at = state.asOf ? state.asOfDays.indexOf(state.asOf) : -1;
  input.value = String(at >= 0 ? at : state.asOfDays.length - 1);
  box.hidden = state.asOfDays.length < 2;
  showAsOf();
}

function showAsOf() {
  const days = state.asOfDays || [];
  const day = days[Number($('as-of').value)] || days[days.length - 1];
  const text = state.asOf ? dayLabel(day) : `today (${dayLabel(day)})`;
  $('as-of-label').textContent = state.asOf ? dayLabel(day) : 'today';
  $('as-of').setAttribute('aria-valuetext', text);
  $('as-of-now').hidden = !state.asOf;
}

let asOfTimer;
/** Show the blocks as of the slider's day (the last one is now). */
function chooseAsOf() {
  const days = state.asOfDays || [];
  const i = Number($('as-of').value);
  state.asOf = i >= days.length - 1 ? null : days[i];
  showAsOf();
  clearTimeout(asOfTimer);
  // Dragging passes many days: fetch tiles for the one it stops on.
  asOfTimer = setTimeout(() => {
    map?.getSource('blocks')?.setUrl(blocksTileJson());
    refreshCard();
    showStatus(state.asOf ? `Blocks coloured as they stood at the end of ${dayLabel(state.asOf)}.` : 'Blocks coloured as they are now.', { timeout: 4000 });
  }, 250);
}

/** Redraw the open card from the block's current numbers (after the coverage changed). */
async function refreshCard() {
  const id = state.selected;
  if (!id || $('block-card').hidden) return;
  try {
    const feature = await fetchJson(blockItem(id));
    if (state.selected === id) renderBlockCard({ ...feature.properties, block_id: id }, { keepResources: true });
  } catch {
    // the card keeps the numbers it had; the header says whether the service is reachable
  }
}

function renderResources(list) {
  const ol = $('block-resources');
  if (!list.length) {
    ol.replaceChildren(el('li', { class: 'muted' }, 'No resources within 6 km.'));
    return;
  }
  ol.replaceChildren(
    ...list.map((r) => {
      const [label, color] = category(r.category);
      return el(
        'li', {},
        el('span', { class: 'dot', style: `background:${color}` }),
        el('span', { class: 'rname', title: r.name || '' }, r.name || String(r.id)),
        el('span', { class: 'rcat' }, label),
        el('span', { class: 'dist' }, formatDistance(r.distance)),
      );
    }),
  );
}

function openCard(from) {
  const card = $('block-card');
  if (card.hidden) state.returnFocus = from || document.activeElement;
  card.hidden = false;
  $('block-title').focus({ preventScroll: true });
}

function closeCard() {
  $('block-card').hidden = true;
  setSelected(null);
  const back = state.returnFocus;
  state.returnFocus = null;
  if (back && document.contains(back)) back.focus({ preventScroll: true });
}

let selection = 0;

/** Select a block: highlight it, show its card, and list the resources nearest to it. */
async function selectBlock(id, { fly = false, from = null, props = null } = {}) {
  const token = ++selection;
  setSelected(id);
  if (props) {
    renderBlockCard(props);
    openCard(from);
  }
  let feature;
  try {
    feature = await fetchJson(blockItem(id));
  } catch (e) {
    if (token === selection) showStatus(`Could not load block ${id} (${e.message}).`, { error: true, timeout: 6000 });
    return;
  }
  if (token !== selection) return;
  renderBlockCard({ ...feature.properties, block_id: id, ...(props || {}) });
  openCard(from);
  const [minX, minY, maxX, maxY] = feature.bbox || bboxOf(feature.geometry);
  if (fly) {
    // Keep the block clear of the card, which is over the map's left side on wide screens. On
    // phones the card is below the map and the list further down: bring the map back into view.
    const narrow = window.matchMedia('(max-width: 760px)').matches;
    if (narrow) $('map').scrollIntoView({ block: 'start', behavior: 'smooth' });
    const padding = narrow ? 30 : { top: 60, bottom: 60, left: 350, right: 60 };
    map.fitBounds([[minX, minY], [maxX, maxY]], { padding, maxZoom: 16, duration: 900 });
  }
  try {
    const nearest = await nearestResources([(minX + maxX) / 2, (minY + maxY) / 2]);
    if (token === selection) renderResources(nearest);
  } catch (e) {
    if (token === selection) $('block-resources').replaceChildren(el('li', { class: 'muted' }, `Could not load resources (${e.message}).`));
  }
}

// ---------------------------------------------------------------------------------------------
// Resources

async function showResource(feature, lngLat) {
  const p = feature.properties || {};
  const [label, color] = category(p.category);
  const meta = el('div', { class: 'popup-meta' }, label);
  const content = el(
    'div', {},
    el('p', { class: 'popup-title' }, el('span', { class: 'dot', style: `background:${color};display:inline-block;margin-right:6px` }), p.name || String(p.id ?? 'Resource')),
    meta,
  );
  new maplibregl.Popup({ closeButton: true, maxWidth: '280px', focusAfterOpen: false })
    .setLngLat(lngLat).setDOMContent(content).addTo(map);
  if (p.id === undefined) return;
  try {
    const item = await fetchJson(`collections/resources/items/${encodeURIComponent(p.id)}`);
    const address = item.properties?.address;
    if (address) meta.append(el('br'), address);
  } catch {
    // the popup already shows the name and category
  }
}

// ---------------------------------------------------------------------------------------------
// The map

function setGroupVisible(group, visible) {
  for (const id of GROUPS[group]) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  document.getElementById(`toggle-${group}`).closest('.layer').classList.toggle('off', !visible);
}

function wireToggles() {
  for (const group of Object.keys(GROUPS)) {
    const box = $(`toggle-${group}`);
    box.addEventListener('change', () => setGroupVisible(group, box.checked));
    setGroupVisible(group, box.checked);
  }
}

function wireInteractions() {
  const interactive = ['resources-circle', 'blocks-fill', 'readiness-fill', 'readiness-nodata', 'access-fill', 'access-none'];
  map.on('click', (e) => {
    const layers = interactive.filter((id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none');
    const hits = layers.length ? map.queryRenderedFeatures(e.point, { layers }) : [];
    const resource = hits.find((f) => f.layer.id === 'resources-circle');
    if (resource) {
      showResource(resource, resource.geometry.coordinates);
      return;
    }
    const block = hits.find((f) => f.properties?.block_id !== undefined);
    if (!block) return;
    const props = block.layer.id === 'blocks-fill' ? block.properties : null;
    selectBlock(String(block.properties.block_id), { props, from: map.getCanvas() });
  });
  let hovered = '';
  map.on('mousemove', (e) => {
    const layers = interactive.filter((id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none');
    const hits = layers.length ? map.queryRenderedFeatures(e.point, { layers }) : [];
    map.getCanvas().style.cursor = hits.length ? 'pointer' : '';
    const id = String(hits.find((f) => f.properties?.block_id !== undefined)?.properties.block_id ?? '');
    if (id !== hovered) {
      hovered = id;
      map.setFilter('blocks-hover', ['==', ['get', 'block_id'], id]);
    }
  });
  map.getCanvas().addEventListener('mouseleave', () => {
    hovered = '';
    map.setFilter('blocks-hover', ['==', ['get', 'block_id'], '']);
  });
}

async function start() {
  $('block-close').addEventListener('click', closeCard);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('block-card').hidden) closeCard();
  });
  $('recruit-more').addEventListener('click', () => {
    const first = state.shown;
    state.shown += RECRUIT_PAGE;
    renderRecruitList();
    // Continue where the list was: on the first row just added.
    document.querySelectorAll('.recruit-row')[first]?.focus();
  });
  $('refresh').addEventListener('click', () => refresh());
  $('as-of').addEventListener('input', chooseAsOf);
  $('as-of-now').addEventListener('click', () => {
    $('as-of').value = $('as-of').max;
    chooseAsOf();
    $('as-of').focus();
  });

  trend = new TrendChart($('trend-chart'), { change: $('trend-change'), table: $('trend-table'), live: $('trend-live') });
  for (const radio of document.querySelectorAll('input[name="trend-interval"]')) {
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      state.trendChoice = radio.value;
      refreshTrend();
    });
  }
  rollup = new RollupTable($('rollup-table'), { more: $('rollup-more'), onSelect: showTract });
  $('rollup-by').addEventListener('change', () => {
    state.rollupBy = $('rollup-by').value;
    if (state.group) rollup.select(null);
    refreshRollup();
  });

  showStatus('Loading the map…');
  let config;
  let collection;
  try {
    [config, collection] = await Promise.all([fetchJson('map/config.json'), fetchJson('collections/blocks')]);
  } catch (e) {
    showStatus(`Could not reach the service (${e.message}).`, { error: true });
    return;
  }
  state.target = Number(config.target) || 1;
  renderCoverageLegend(state.target);
  refresh({ reloadTiles: false });
  const [readiness, counts] = await Promise.all([readinessBreaks(), resourceCounts()]);
  renderReadinessLegend(readiness.breaks, readiness.decimals);
  renderResourceLegend(counts);
  const accessCategory = renderAccessPicker(counts);
  renderAccessLegend(accessCategory);

  const bbox = collection?.extent?.spatial?.bbox?.[0];
  state.extent = bbox || null;
  const view = bbox
    ? { bounds: [[bbox[0], bbox[1]], [bbox[2], bbox[3]]], fitBoundsOptions: { padding: 24 } }
    : { center: [-98.5, 39.8], zoom: 3 };
  map = new maplibregl.Map({
    container: 'map',
    style: buildStyle({ ...config, target: state.target, readinessBreaks: readiness.breaks, accessCategory }),
    ...view,
    maxZoom: 19,
    attributionControl: config.basemap ? { compact: true } : false,
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
  });
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  window.belongMap = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');

  // The no-data hatch is drawn here rather than shipped in a sprite; MapLibre asks for it the
  // first time a tile needs it.
  map.setMissingStyleImageResolver((id) => {
    if (id === 'hatch' && !map.hasImage('hatch')) {
      const { image, pixelRatio } = hatchImage();
      map.addImage('hatch', image, { pixelRatio });
    }
  });
  map.on('error', (e) => {
    const message = e.error?.message || 'unknown error';
    showStatus(`Some map data could not be loaded (${message}).`, { error: true });
  });
  map.on('load', () => {
    $('access-category').addEventListener('change', (e) => showAccessCategory(e.target.value));
    wireToggles();
    wireInteractions();
    if (!bbox) showStatus('No blocks loaded yet: import blocks to see the map.');
  });
  map.once('idle', () => {
    if (!$('map-status').classList.contains('error')) showStatus('');
    document.body.dataset.ready = '1';
  });

  // Keep the numbers current: every minute while visible, and when the tab comes back.
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
  const stale = () => document.visibilityState === 'visible' && Date.now() - state.lastRefresh > 15_000;
  document.addEventListener('visibilitychange', () => { if (stale()) refresh(); });
  window.addEventListener('focus', () => { if (stale()) refresh(); });
}

start();
