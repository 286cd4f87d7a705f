// Where the finder's places come from: `/resources/nearest` while the service answers, and the
// whole resources layer (`/collections/resources/items`, every page, kept by the service worker)
// for the category counts, the map's dots and, offline, the nearest places computed here.

/** The first page of the resources layer; the service allows up to 10,000 items per page. */
export const LAYER_PATH = 'collections/resources/items?f=geojson&limit=10000';

const url = (path) => new URL(path, document.baseURI).href;

/** The service answered with an error status; `detail` is its problem+json detail. */
export class HttpError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

/** The service could not be reached (offline, or no answer in time). */
export class NetworkError extends Error {}

/** `fetch` that gives up after `ms` (a phone on poor signal should not wait forever). */
async function fetchWithin(href, ms, init = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await fetch(href, { ...init, signal: controller.signal });
  } catch (e) {
    throw new NetworkError(e.message);
  } finally {
    clearTimeout(timer);
  }
}

async function problem(res) {
  try {
    const body = await res.json();
    return body.detail || body.title || res.statusText;
  } catch {
    return res.statusText;
  }
}

/**
 * Every feature of the resources layer, following `next` links. `savedAt` is when the service
 * sent it (its `timeStamp`: a copy the service worker kept may be older than this visit).
 */
export async function loadLayer() {
  const features = [];
  let next = url(LAYER_PATH);
  let savedAt = null;
  for (let page = 0; next && page < 100; page++) {
    const res = await fetchWithin(next, 30_000, { headers: { Accept: 'application/geo+json' } });
    if (!res.ok) throw new HttpError(res.status, await problem(res));
    const fc = await res.json();
    const date = Date.parse(fc.timeStamp || res.headers.get('date') || '');
    if (Number.isFinite(date) && (savedAt === null || date < savedAt)) savedAt = date;
    for (const f of fc.features || []) if (f.geometry?.type === 'Point') features.push(f);
    next = (fc.links || []).find((l) => l.rel === 'next')?.href || null;
  }
  return { features, savedAt: savedAt === null ? null : new Date(savedAt) };
}

/** Counts per category, most first (ties by name). */
export function categoryCounts(features) {
  const counts = new Map();
  for (const f of features) {
    const c = f.properties?.category || '';
    counts.set(c, (counts.get(c) || 0) + 1);
  }
  return [...counts].map(([category, count]) => ({ category, count }))
    .sort((a, b) => b.count - a.count || a.category.localeCompare(b.category));
}

/** Great-circle distance in metres (haversine on the mean Earth radius). */
export function haversine([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * The `limit` places of `features` nearest to `[lon, lat]`, in the categories given (all when
 * none), as `/resources/nearest` would list them (`properties.distance_m`).
 */
export function nearestLocal(features, origin, { categories = [], limit = 10 } = {}) {
  const wanted = new Set(categories);
  return features
    .filter((f) => !wanted.size || wanted.has(f.properties?.category))
    .map((f) => ({ f, d: haversine(origin, f.geometry.coordinates) }))
    .sort((a, b) => a.d - b.d || String(a.f.id).localeCompare(String(b.f.id)))
    .slice(0, limit)
    .map(({ f, d }) => ({ ...f, properties: { ...f.properties, id: f.properties?.id ?? f.id, distance_m: d } }));
}

/**
 * `GET /resources/nearest` from `{lon, lat}` or `{blockId}`. Answers the FeatureCollection
 * (with `origin` and `categories`); throws [`NetworkError`] when the service cannot be reached
 * and [`HttpError`] for an error status.
 */
export async function nearestOnline(origin, { categories = [], limit = 10 } = {}) {
  const q = new URLSearchParams();
  if (origin.blockId) q.set('block_id', origin.blockId);
  else {
    q.set('lon', origin.lon.toFixed(6));
    q.set('lat', origin.lat.toFixed(6));
  }
  if (categories.length) q.set('category', categories.join(','));
  q.set('limit', String(limit));
  const res = await fetchWithin(url(`resources/nearest?${q}`), 12_000, { headers: { Accept: 'application/geo+json' } });
  if (!res.ok) throw new HttpError(res.status, await problem(res));
  return res.json();
}

/** A phone number as a `tel:` URI: digits (and a leading +) of the part before any extension. */
export function telUri(phone) {
  const main = String(phone).split(/\s*(?:x|ext\.?|extension|#)\s*\d/i)[0];
  const digits = main.replace(/[^\d+]/g, '').replace(/(?!^)\+/g, '');
  return digits.replace(/\D/g, '').length >= 3 ? `tel:${digits}` : null;
}

/** A directions link for a destination any phone opens (the maps app, or the web). */
export function directionsUri([lon, lat]) {
  return `https://www.google.com/maps/dir/?api=1&destination=${lat.toFixed(6)},${lon.toFixed(6)}`;
}
