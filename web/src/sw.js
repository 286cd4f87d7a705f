// The finder's service worker, served at `find/sw.js` with the scope `find` (the page, with or
// without `?lang=`): it keeps the page, its scripts and styles, MapLibre and the resources layer
// so that `/find` opens and finds the nearest places without a connection.
//
// `belong serve` fills in the version (a digest of the embedded web files), so a new binary
// installs a new worker, which fetches everything again and drops the old copies.

const VERSION = '{{version}}';
const STATIC = `belong-find-${VERSION}`;
// The resources layer, the map's configuration and the block tiles seen: kept across versions.
const DATA = 'belong-find-data';
const TILE_ENTRIES = 400;
const NETWORK_WAIT_MS = 5000;

const root = new URL('../', self.location.href);
const at = (path) => new URL(path, root).href;

// Without these the page cannot open offline.
const ESSENTIAL = [
  'find', 'find/find.js', 'find/find-i18n.js', 'find/find-data.js', 'find/dom.js', 'find/find.css',
  'find/find-strings.json', 'map/icon.svg',
].map(at);
// MapLibre (absent from a build without npm: then the page has no map, online or not).
const MAPLIBRE = [
  'map/vendor/maplibre-gl.mjs', 'map/vendor/maplibre-gl-worker.mjs?v={{maplibre}}', 'map/vendor/maplibre-gl.css',
].map(at);
// The first page of the layer, as `find-data.js` asks for it (LAYER_PATH there).
const LAYER = at('collections/resources/items?f=geojson&limit=10000');

/** Fetch every page of the layer (following `next`) into the data cache. */
async function cacheLayer() {
  const cache = await caches.open(DATA);
  let next = LAYER;
  for (let page = 0; next && page < 100; page++) {
    const res = await fetch(next, { cache: 'no-store', headers: { Accept: 'application/geo+json' } });
    if (!res.ok) return;
    await cache.put(next, res.clone());
    const fc = await res.json();
    next = (fc.links || []).find((l) => l.rel === 'next')?.href || null;
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(STATIC);
    await cache.addAll(ESSENTIAL.map((u) => new Request(u, { cache: 'reload' })));
    await Promise.all(MAPLIBRE.map((u) => cache.add(new Request(u, { cache: 'reload' })).catch(() => {})));
    // A failure here is made good by the page's own request for the layer, which goes through
    // `staleWhileRevalidate` below.
    await cacheLayer().catch(() => {});
    await caches.open(DATA).then((data) => data.add(at('map/config.json'))).catch(() => {});
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('belong-find-') && name !== STATIC && name !== DATA) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function within(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer in time')), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

/** The network when it answers in time (keeping a copy), else the copy. */
async function networkFirst(request, cacheName, { key = request, fallback = {} } = {}) {
  const cache = await caches.open(cacheName);
  try {
    const res = await within(fetch(request), NETWORK_WAIT_MS);
    if (res.ok) await cache.put(key, res.clone());
    // A service that is starting or failing (5xx): the copy is more use than the error.
    if (res.status >= 500) return (await cache.match(key, { ignoreVary: true, ...fallback })) || res;
    return res;
  } catch (e) {
    const hit = await cache.match(key, { ignoreVary: true, ...fallback });
    if (hit) return hit;
    throw e;
  }
}

/** The copy at once (refreshed behind it), else the network. */
async function staleWhileRevalidate(event, cacheName) {
  const cache = await caches.open(cacheName);
  const hit = await cache.match(event.request, { ignoreVary: true });
  const refresh = fetch(event.request).then(async (res) => {
    if (res.ok) await cache.put(event.request, res.clone());
    return res;
  });
  if (hit) {
    event.waitUntil(refresh.catch(() => {}));
    return hit;
  }
  return refresh;
}

async function cacheFirst(request) {
  const hit = await caches.match(request, { cacheName: STATIC, ignoreVary: true });
  return hit || fetch(request);
}

/** Keep the newest block tiles only. */
async function trimTiles() {
  const cache = await caches.open(DATA);
  const tiles = (await cache.keys()).filter((r) => new URL(r.url).pathname.includes('/tiles/'));
  await Promise.all(tiles.slice(0, Math.max(0, tiles.length - TILE_ENTRIES)).map((r) => cache.delete(r)));
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || request.headers.has('Authorization')) return;
  const u = new URL(request.url);
  if (u.origin !== root.origin || !u.pathname.startsWith(root.pathname)) return;
  const path = u.pathname.slice(root.pathname.length);
  if (request.mode === 'navigate') {
    if (path !== 'find') return;
    // Any saved copy of the page will do: it takes its language from `?lang=` itself.
    event.respondWith(networkFirst(request, STATIC, { fallback: { ignoreSearch: true } }));
  } else if (ESSENTIAL.includes(u.href) || MAPLIBRE.includes(u.href)) {
    event.respondWith(cacheFirst(request));
  } else if (path === 'collections/resources/items' && (u.searchParams.get('f') ?? 'geojson') === 'geojson') {
    // Pages after the first (their `next` links) carry no `f`: GeoJSON is the default.
    event.respondWith(staleWhileRevalidate(event, DATA));
  } else if (path === 'map/config.json' || path === 'tiles/blocks.json') {
    event.respondWith(networkFirst(request, DATA));
  } else if (path.startsWith('tiles/blocks/')) {
    const answer = networkFirst(request, DATA);
    event.respondWith(answer);
    event.waitUntil(answer.then(trimTiles, () => {}));
  }
});
