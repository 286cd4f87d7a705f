// The finder page (`/find`): the resources nearest to where a family is, for partner staff on a
// phone. Choose kinds of places (chips with counts), set the origin (the device's location, a
// tap on the map, or a block id), and read the nearest places as a list and on a small map.
// English and Spanish (`?lang=`); works offline once opened: the service worker (`find/sw.js`)
// keeps the page and the resources layer, and offline the nearest places are computed here.

import { $, el } from './dom.js';
import * as i18n from './find-i18n.js';
import { t, tn } from './find-i18n.js';
import * as data from './find-data.js';

const url = (path) => new URL(path, document.baseURI).href;

const PAGE = 10;
const MAX_LIMIT = 100;
const SAVED_CATEGORIES = 'belong-find-categories';
// The map page's colours, so a kind of place looks the same on both pages.
const COLORS = {
  partner: '#3b5ba9', school: '#c99700', clinic: '#d6336c', food_bank: '#7048e8',
  shelter: '#8c5a2b', park: '#2b8a3e', library: '#1c7ed6',
};
const OTHER_COLOR = '#5c6670';
const colorOf = (category) => COLORS[category] || OTHER_COLOR;

const state = {
  /** The whole resources layer: `{features, savedAt}`, or null when it could not be had. */
  layer: null,
  /** `[{category, count}]`, most first. */
  counts: [],
  selected: new Set(savedCategories()),
  /** `{kind: 'location'|'point'|'block', lon, lat, blockId}`. */
  origin: null,
  /** The origin of the list shown. */
  shownOrigin: null,
  limit: PAGE,
  results: [],
  offline: navigator.onLine === false,
  search: 0,
  /** The status line as a function, so a language switch can say it again in the other language. */
  status: () => t('results_start'),
  statusError: false,
  current: null,
};

let maplibregl = null;
let map = null;
let pins = [];
let originMarker = null;

// ---------------------------------------------------------------------------------------------
// Status, notices, language

function setStatus(message, { error = false } = {}) {
  state.status = message;
  state.statusError = error;
  renderStatus();
}

function renderStatus() {
  const node = $('status');
  node.textContent = state.status();
  node.classList.toggle('error', state.statusError);
}

function setOffline(offline) {
  state.offline = offline;
  renderNotice();
}

function renderNotice() {
  const notice = $('network');
  if (!state.offline) {
    notice.hidden = true;
    notice.textContent = '';
    $('map-note').hidden = true;
    return;
  }
  const saved = state.layer?.features.length ? state.layer : null;
  if (!saved) notice.textContent = t('offline_empty');
  else if (saved.savedAt) notice.textContent = t('offline', { date: i18n.formatDate(saved.savedAt) });
  else notice.textContent = t('offline_undated');
  notice.hidden = false;
  const note = $('map-note');
  note.textContent = t('offline_map');
  note.hidden = !map;
}

function markLanguage() {
  for (const a of document.querySelectorAll('.lang-switch a')) {
    const on = a.dataset.lang === i18n.lang();
    if (on) a.setAttribute('aria-current', 'true');
    else a.removeAttribute('aria-current');
    const href = new URL(window.location.href);
    href.searchParams.set('lang', a.dataset.lang);
    a.href = href.pathname + href.search;
  }
}

/** Switch language in place: the static strings, then everything drawn from data. */
function switchLanguage(lang) {
  i18n.setLang(lang);
  i18n.translatePage();
  markLanguage();
  const href = new URL(window.location.href);
  href.searchParams.set('lang', lang);
  window.history.replaceState(null, '', href);
  renderChips();
  renderResults();
  renderStatus();
  renderNotice();
  const error = $('block-error');
  if (!error.hidden && error.dataset.key) error.textContent = t(error.dataset.key, { id: error.dataset.id || '' });
  translateMapControls();
}

// ---------------------------------------------------------------------------------------------
// Categories

function savedCategories() {
  try {
    const saved = JSON.parse(window.localStorage.getItem(SAVED_CATEGORIES) || '[]');
    return Array.isArray(saved) ? saved.filter((c) => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

function saveCategories() {
  try {
    window.localStorage.setItem(SAVED_CATEGORIES, JSON.stringify([...state.selected]));
  } catch {
    // private browsing: the choice is kept for this visit only
  }
}

function renderChips() {
  const box = $('chips');
  const focused = document.activeElement?.closest?.('.chip')?.querySelector('input')?.value;
  if (!state.counts.length) {
    box.replaceChildren(el('p', { class: 'hint' }, state.layer ? t('status_none') : t('categories_loading')));
    return;
  }
  // A saved choice of a kind that no longer exists would filter everything out.
  for (const c of [...state.selected]) if (!state.counts.some((x) => x.category === c)) state.selected.delete(c);
  box.replaceChildren(...state.counts.map(({ category, count }, i) => {
    const input = el('input', { type: 'checkbox', value: category, id: `category-${i}`, name: 'category' });
    input.checked = state.selected.has(category);
    input.addEventListener('change', () => {
      if (input.checked) state.selected.add(category);
      else state.selected.delete(category);
      categoriesChanged();
    });
    return el(
      'label', { class: 'chip', for: `category-${i}` },
      input,
      el('span', { class: 'face' },
        el('span', { class: 'dot', style: `background:${colorOf(category)}`, 'aria-hidden': 'true' }),
        el('span', { class: 'name' }, i18n.categoryName(category)),
        el('span', { class: 'count', 'aria-hidden': 'true' }, i18n.formatCount(count)),
        el('span', { class: 'sr-only' }, ` ${tn('count_sr', count)}`)),
    );
  }));
  $('clear-categories').hidden = state.selected.size === 0;
  if (focused !== undefined) box.querySelector(`input[value="${CSS.escape(focused)}"]`)?.focus();
}

function categoriesChanged() {
  saveCategories();
  $('clear-categories').hidden = state.selected.size === 0;
  filterMapDots();
  if (state.origin) {
    state.limit = PAGE;
    search();
  }
}

function updateCounts(counts) {
  const next = counts.filter((c) => c && typeof c.category === 'string')
    .map((c) => ({ category: c.category, count: Number(c.count) || 0 }))
    .sort((a, b) => b.count - a.count || a.category.localeCompare(b.category));
  if (JSON.stringify(next) === JSON.stringify(state.counts)) return;
  state.counts = next;
  renderChips();
}

// ---------------------------------------------------------------------------------------------
// Origin

function locate() {
  clearBlockError();
  if (!('geolocation' in navigator)) {
    setStatus(() => t('error_geo_unsupported'), { error: true });
    return;
  }
  const button = $('locate');
  button.setAttribute('aria-busy', 'true');
  setStatus(() => t('status_locating'));
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      button.removeAttribute('aria-busy');
      setOrigin({ kind: 'location', lon: pos.coords.longitude, lat: pos.coords.latitude });
    },
    (err) => {
      button.removeAttribute('aria-busy');
      const key = { 1: 'error_geo_denied', 2: 'error_geo_unavailable', 3: 'error_geo_timeout' }[err.code] || 'error_geo_unavailable';
      setStatus(() => t(key), { error: true });
    },
    { enableHighAccuracy: true, timeout: 20_000, maximumAge: 60_000 },
  );
}

function setOrigin(origin) {
  state.origin = origin;
  state.limit = PAGE;
  // On a phone the list is below the choices: bring the map and the list's start into view
  // (not after a tap on the map, which is in view already).
  const reveal = origin.kind !== 'point' && window.matchMedia('(max-width: 859px)').matches;
  search().then(() => {
    if (reveal && state.origin === origin && state.results.length) {
      $('map').closest('.map-wrap').scrollIntoView({ block: 'start', behavior: reducedMotion() ? 'auto' : 'smooth' });
    }
  });
}

function reducedMotion() {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

function blockError(key, id = '') {
  const error = $('block-error');
  error.dataset.key = key;
  error.dataset.id = id;
  error.textContent = t(key, { id });
  error.hidden = false;
  $('block-id').setAttribute('aria-invalid', 'true');
  setStatus(() => t(key, { id }), { error: true });
}

function clearBlockError() {
  $('block-error').hidden = true;
  $('block-error').textContent = '';
  $('block-id').removeAttribute('aria-invalid');
}

function submitBlock(e) {
  e.preventDefault();
  const id = $('block-id').value.trim();
  clearBlockError();
  if (!id) {
    blockError('error_block_empty');
    $('block-id').focus();
    return;
  }
  setOrigin({ kind: 'block', blockId: id });
}

// ---------------------------------------------------------------------------------------------
// Searching

/** The nearest places to the origin: from the service, else (offline) from the saved layer. */
async function search() {
  const token = ++state.search;
  const origin = state.origin;
  const categories = [...state.selected];
  const limit = state.limit;
  setStatus(() => t('status_searching'));
  $('results').setAttribute('aria-busy', 'true');
  const done = () => $('results').removeAttribute('aria-busy');
  let features;
  let resolved = origin;
  try {
    if (navigator.onLine === false) throw new data.NetworkError('offline');
    const fc = await data.nearestOnline(origin, { categories, limit });
    if (token !== state.search) return;
    features = Array.isArray(fc.features) ? fc.features : [];
    if (fc.origin && Number.isFinite(fc.origin.lon)) resolved = { ...origin, lon: fc.origin.lon, lat: fc.origin.lat };
    if (Array.isArray(fc.categories)) updateCounts(fc.categories);
    setOffline(false);
  } catch (e) {
    if (token !== state.search) return;
    if (!(e instanceof data.NetworkError)) {
      done();
      if (origin.kind === 'block' && (e.status === 404 || e.status === 400)) {
        // Not an origin: the list (and later category changes) stay with the last good one.
        state.origin = state.shownOrigin;
        blockError('error_block_unknown', origin.blockId);
      } else setStatus(() => t('error_search'), { error: true });
      return;
    }
    // Offline (or no answer in time): the nearest from the saved layer, measured here.
    setOffline(true);
    if (origin.kind === 'block') {
      done();
      state.origin = state.shownOrigin;
      blockError('error_block_offline');
      return;
    }
    if (!state.layer?.features.length) {
      done();
      setStatus(() => t('offline_empty'), { error: true });
      return;
    }
    features = data.nearestLocal(state.layer.features, [resolved.lon, resolved.lat], { categories, limit });
  }
  done();
  state.results = features;
  state.shownOrigin = origin;
  state.resolved = resolved;
  state.current = null;
  renderResults();
  showOnMap();
  setStatus(() => summary(origin, categories, features.length));
  document.body.dataset.results = String(features.length);
  document.body.dataset.origin = `${resolved.lon},${resolved.lat}`;
}

function summary(origin, categories, n) {
  if (!n) return t('status_none');
  let where;
  if (origin.kind === 'location') where = t('origin_location');
  else if (origin.kind === 'point') where = t('origin_point');
  else where = t('origin_block', { id: origin.blockId });
  if (!categories.length) return tn('status_results', n, { origin: where });
  const names = i18n.formatList(categories.map((c) => i18n.categoryName(c)));
  return tn('status_results_category', n, { origin: where, categories: names });
}

// ---------------------------------------------------------------------------------------------
// The list

const ICONS = {
  call: 'M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25c1.1.37 2.3.57 3.6.57a1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z',
  directions: 'M21.7 11.3l-9-9a1 1 0 0 0-1.4 0l-9 9a1 1 0 0 0 0 1.4l9 9a1 1 0 0 0 1.4 0l9-9a1 1 0 0 0 0-1.4zM14 14.5V12h-4v3H8v-4a1 1 0 0 1 1-1h5V7.5l3.5 3.5z',
};

function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name]);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

/** A field as imported: lists joined, everything else as text; null when absent or empty. */
function shown(value) {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.length ? value.join(', ') : null;
  const text = String(value).trim();
  return text ? text : null;
}

function safeWebUrl(value) {
  try {
    const u = new URL(String(value));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function resultItem(feature, i) {
  const p = feature.properties || {};
  const name = shown(p.name) || String(p.id ?? feature.id ?? '');
  const nameId = `result-${i}-name`;
  const coords = feature.geometry?.coordinates;
  const facts = [['hours', shown(p.hours)], ['languages', shown(p.languages)], ['capacity', shown(p.capacity)]]
    .filter(([, v]) => v !== null);
  const actions = [];
  const phone = shown(p.phone);
  const tel = phone ? data.telUri(phone) : null;
  if (tel) {
    actions.push(el('a', { class: 'action call', href: tel, 'aria-describedby': nameId }, icon('call'), t('call', { phone })));
  }
  if (Array.isArray(coords)) {
    actions.push(el('a', {
      class: 'action directions', href: data.directionsUri(coords), target: '_blank', rel: 'noopener',
      'aria-describedby': nameId,
    }, icon('directions'), t('directions'), el('span', { class: 'sr-only' }, ` ${t('opens_new')}`)));
  }
  const web = p.url ? safeWebUrl(p.url) : null;
  if (web) {
    actions.push(el('a', { class: 'action website', href: web, target: '_blank', rel: 'noopener', 'aria-describedby': nameId },
      t('website'), el('span', { class: 'sr-only' }, ` ${t('opens_new')}`)));
  }
  const email = shown(p.email);
  if (email && /^[^\s@]+@[^\s@]+$/.test(email)) {
    actions.push(el('a', { class: 'action email', href: `mailto:${email}`, 'aria-describedby': nameId }, t('email')));
  }
  const item = el(
    'li', { class: 'result', id: `result-${i}`, dataset: { id: String(p.id ?? feature.id ?? '') } },
    el('div', { class: 'result-head' },
      el('span', { class: 'rank', 'aria-hidden': 'true' }, i18n.formatCount(i + 1)),
      el('h3', { id: nameId, tabindex: '-1', 'data-imported': '' }, name),
      el('span', { class: 'distance' }, t('distance_away', { distance: i18n.formatDistance(Number(p.distance_m)) }))),
    el('p', { class: 'meta' },
      el('span', { class: 'dot', style: `background:${colorOf(p.category)}`, 'aria-hidden': 'true' }),
      i18n.categoryName(p.category, { one: true })),
    shown(p.address) ? el('p', { class: 'address', 'data-imported': '' }, shown(p.address)) : null,
    facts.length
      ? el('dl', { class: 'facts' }, ...facts.flatMap(([key, v]) => [el('dt', {}, t(key)), el('dd', { 'data-imported': '' }, v)]))
      : null,
    actions.length ? el('div', { class: 'actions' }, ...actions) : null,
  );
  if (state.current === i) item.classList.add('current');
  return item;
}

function renderResults() {
  const list = $('results');
  list.replaceChildren(...state.results.map(resultItem));
  const more = $('more');
  more.hidden = !state.origin || state.results.length < state.limit || state.limit >= MAX_LIMIT;
}

/** Choose result `i` (from its pin): mark it and bring its card into view. */
function choose(i) {
  state.current = i;
  for (const [j, li] of [...$('results').children].entries()) li.classList.toggle('current', j === i);
  pins.forEach((pin, j) => pin.getElement().classList.toggle('current', j === i));
  const heading = $(`result-${i}-name`);
  heading?.closest('li')?.scrollIntoView({ block: 'nearest', behavior: reducedMotion() ? 'auto' : 'smooth' });
  heading?.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------------
// The map

function layerBounds() {
  const features = state.layer?.features || [];
  if (!features.length) return null;
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const f of features) {
    const [x, y] = f.geometry.coordinates;
    minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x); maxY = Math.max(maxY, y);
  }
  return [[minX, minY], [maxX, maxY]];
}

function buildStyle(config) {
  const sources = { blocks: { type: 'vector', url: url('tiles/blocks.json') } };
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#eceae4' } }];
  if (config?.basemap) {
    sources.basemap = { type: 'raster', tiles: [config.basemap], tileSize: 256, maxzoom: 19 };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap', paint: { 'raster-saturation': -0.5 } });
  }
  layers.push({
    id: 'blocks-outline', type: 'line', source: 'blocks', 'source-layer': 'blocks',
    paint: { 'line-color': '#ffffff', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 0.5, 16, 2.5] },
  });
  return { version: 8, sources, layers };
}

function dotsData() {
  return { type: 'FeatureCollection', features: state.layer?.features || [] };
}

function filterMapDots() {
  if (!map?.getLayer('places')) return;
  const wanted = [...state.selected];
  map.setFilter('places', wanted.length ? ['in', ['get', 'category'], ['literal', wanted]] : null);
}

async function startMap() {
  const container = $('map');
  let config = null;
  try {
    const res = await fetch(url('map/config.json'));
    if (res.ok) config = await res.json();
  } catch {
    // offline without a saved copy: no basemap
  }
  if (config && !config.maplibre) {
    // A build without MapLibre GL JS: the list works without the map.
    container.closest('.map-wrap').hidden = true;
    return;
  }
  try {
    maplibregl = await import('../map/vendor/maplibre-gl.mjs');
    const bounds = layerBounds();
    map = new maplibregl.Map({
      container,
      style: buildStyle(config),
      ...(bounds ? { bounds, fitBoundsOptions: { padding: 20 } } : { center: [-118.2856, 34.0409], zoom: 12 }),
      maxZoom: 18,
      locale: i18n.mapLibreLocale(),
      attributionControl: config?.basemap ? { compact: true } : false,
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
    });
  } catch {
    container.closest('.map-wrap').hidden = true;
    map = null;
    return;
  }
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  window.belongFindMap = map;
  // Tiles may be missing offline (or on a poor connection): the list does not need them.
  map.on('error', () => {
    if (state.offline) renderNotice();
  });
  map.on('click', (e) => {
    if (e.originalEvent?.target?.closest?.('.pin')) return;
    clearBlockError();
    setOrigin({ kind: 'point', lon: e.lngLat.lng, lat: e.lngLat.lat });
  });
  map.on('load', () => {
    map.addSource('places', { type: 'geojson', data: dotsData() });
    map.addLayer({
      id: 'places', type: 'circle', source: 'places',
      paint: {
        'circle-color': ['match', ['get', 'category'], ...Object.entries(COLORS).flat(), OTHER_COLOR],
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 11, 2.5, 15, 5],
        'circle-opacity': 0.75, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1,
      },
    });
    filterMapDots();
    translateMapControls();
    document.body.dataset.mapReady = '1';
  });
  renderNotice();
  if (state.results.length) showOnMap();
}

/** MapLibre sets its control labels once, in the language the map was made in. */
function translateMapControls() {
  if (!map) return;
  const strings = i18n.mapLibreLocale();
  const set = (selector, key) => {
    for (const node of map.getContainer().querySelectorAll(selector)) {
      if (node.hasAttribute('title')) node.setAttribute('title', strings[key]);
      node.setAttribute('aria-label', strings[key]);
    }
  };
  set('.maplibregl-ctrl-zoom-in', 'NavigationControl.ZoomIn');
  set('.maplibregl-ctrl-zoom-out', 'NavigationControl.ZoomOut');
  set('.maplibregl-ctrl-attrib-button', 'AttributionControl.ToggleAttribution');
  map.getCanvas().setAttribute('aria-label', strings['Map.Title']);
}

/** The origin and numbered pins of the results, and a view that holds them. */
function showOnMap() {
  if (!map || !maplibregl) return;
  for (const pin of pins) pin.remove();
  pins = [];
  originMarker?.remove();
  originMarker = null;
  const origin = state.resolved;
  if (!origin || !Number.isFinite(origin.lon)) return;
  const dot = el('div', { class: 'origin-dot', 'aria-hidden': 'true' });
  originMarker = new maplibregl.Marker({ element: dot }).setLngLat([origin.lon, origin.lat]).addTo(map);
  let [minX, minY, maxX, maxY] = [origin.lon, origin.lat, origin.lon, origin.lat];
  state.results.forEach((f, i) => {
    const [x, y] = f.geometry.coordinates;
    minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x); maxY = Math.max(maxY, y);
    const node = el('div', { class: 'pin', 'aria-hidden': 'true', dataset: { rank: String(i + 1) } }, i18n.formatCount(i + 1));
    node.addEventListener('click', (e) => {
      e.stopPropagation();
      choose(i);
    });
    pins.push(new maplibregl.Marker({ element: node }).setLngLat([x, y]).addTo(map));
  });
  const bounds = [[minX, minY], [maxX, maxY]];
  map.fitBounds(bounds, { padding: 40, maxZoom: 16, duration: reducedMotion() ? 0 : 600 });
}

// ---------------------------------------------------------------------------------------------
// Offline

async function registerWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  try {
    await navigator.serviceWorker.register(url('find/sw.js'), { scope: url('find') });
    await navigator.serviceWorker.ready;
    const saved = await caches.match(url(data.LAYER_PATH), { ignoreVary: true });
    if (saved) {
      $('offline-ready').hidden = false;
      document.body.dataset.offlineReady = '1';
    }
  } catch {
    // no service worker (a private window, or an unsupported browser): the page works online
  }
}

// ---------------------------------------------------------------------------------------------

async function start() {
  i18n.setLang(i18n.initialLang());
  try {
    await i18n.loadStrings(url('find/find-strings.json'));
  } catch {
    // The page is already in the server's language; dynamic strings fall back to their keys.
  }
  i18n.translatePage();
  markLanguage();
  for (const a of document.querySelectorAll('.lang-switch a')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      switchLanguage(a.dataset.lang);
    });
  }
  $('locate').addEventListener('click', locate);
  $('block-form').addEventListener('submit', submitBlock);
  $('clear-categories').addEventListener('click', () => {
    state.selected.clear();
    for (const box of document.querySelectorAll('#chips input')) box.checked = false;
    categoriesChanged();
    document.querySelector('#chips input')?.focus();
  });
  $('more').addEventListener('click', () => {
    const first = state.results.length;
    state.limit = Math.min(MAX_LIMIT, state.limit + PAGE);
    search().then(() => $(`result-${first}-name`)?.focus());
  });
  window.addEventListener('online', () => setOffline(false));
  window.addEventListener('offline', () => setOffline(true));

  setStatus(() => t('status_loading'));
  try {
    state.layer = await data.loadLayer();
    state.counts = data.categoryCounts(state.layer.features);
  } catch (e) {
    state.layer = null;
    if (e instanceof data.NetworkError) state.offline = true;
  }
  renderChips();
  renderNotice();
  setStatus(() => (state.layer ? t('results_start') : t(state.offline ? 'offline_empty' : 'error_layer')), { error: !state.layer });
  document.body.dataset.ready = '1';
  registerWorker();
  startMap();
}

start();
