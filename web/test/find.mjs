#!/usr/bin/env node
// End-to-end test of the finder page (/find) in a real headless Chromium: a phone-size screen in
// English and Spanish (`?lang=es`, and Accept-Language), geolocation emulated, the nearest places
// against an order computed here from the resources layer, tel: and directions links, the block
// id and map-tap origins, axe-core WCAG 2.1 AA in both languages on a phone and on a desktop,
// then offline: the service worker's copy opens, says it is offline and still lists the nearest.
//
//   node web/test/find.mjs [BASE_URL]       (default http://127.0.0.1:8080; a running `belong serve`)
//
// Env: CHROMIUM (default /usr/bin/chromium), FIND_TEST_SCREENSHOTS (folder for screenshots),
// BELONG_SERVER_PID (the server's process: stopped before the offline checks, so "offline" is
// real; without it only the browser is put offline), BELONG_TOKEN (a manager token: first add a
// place with hours, languages and capacity beside the origin, and check they are shown),
// FIND_TEST_LIMIT_SECS (default 280).
// Prints one JSON summary and an "N passed, M failed" line; exits 1 when a check fails, 2 when
// the browser cannot be started.

import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { wcagViolations } from './axe.mjs';
import { chromium } from 'playwright-core';

const base = (process.argv[2] || process.env.BELONG_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const serverPid = Number(process.env.BELONG_SERVER_PID || 0);
const token = process.env.BELONG_TOKEN || '';
const shots = process.env.FIND_TEST_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'belong-find-shots-'));
mkdirSync(shots, { recursive: true });
const TIMEOUT = 90_000;
const WATCHDOG = Number(process.env.FIND_TEST_LIMIT_SECS || 280) * 1000;
const STRINGS = JSON.parse(readFileSync(new URL('../src/find-strings.json', import.meta.url), 'utf8'));
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 };
// Near the Children's Bureau headquarters, inside the demo catchment.
const HERE = { latitude: 34.0409, longitude: -118.2856 };
// A place ~30 m from HERE with the optional fields (added when there is a token), as imported.
const EXTRA = {
  id: 'FINDTEST1', name: 'Centro de Ayuda Familiar', category: 'food_bank', lon: -118.2858, lat: 34.0411,
  phone: '(213) 555-0199 ext. 4', hours: 'Mon–Fri 9:00–17:00', languages: 'English, Español', capacity: '40',
};

const checks = [];
const problems = [];
const screenshots = [];
let offlinePhase = false;

function check(name, ok, detail = '') {
  checks.push({ name, ok: Boolean(ok), detail: ok ? '' : detail });
  return Boolean(ok);
}

// Answers the test asks for on purpose (an unknown block id), and, offline, the block tiles and
// TileJSON the service worker never saw.
const EXPECTED = [/\/collections\/blocks\/items\/999999999999999$/, /\/resources\/nearest\?block_id=999999999999999/];
const expected = (u) => EXPECTED.some((re) => re.test(u)) || (offlinePhase && /\/tiles\//.test(u));

function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    // The browser's own line for an answer below (its URL is the message's location).
    if (/^Failed to load resource/.test(msg.text()) && expected(msg.location()?.url || '')) return;
    problems.push(`${label}: console.${msg.type()}: ${msg.text()} (${msg.location()?.url || ''})`);
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText || 'failed';
    if (why !== 'net::ERR_ABORTED' && !expected(req.url())) problems.push(`${label}: request failed: ${req.url()} (${why})`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && !expected(res.url())) problems.push(`${label}: HTTP ${res.status()} for ${res.url()}`);
  });
}

async function screenshot(page, name, { fullPage = true } = {}) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage });
  screenshots.push(path);
}

function haversine([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
}

/** The demo resources, each with its distance from `HERE`, nearest first. */
let layer = [];
function expectedOrder(categories = [], from = [HERE.longitude, HERE.latitude]) {
  return layer.filter((f) => !categories.length || categories.includes(f.properties.category))
    .map((f) => ({ id: String(f.properties.id ?? f.id), d: haversine(from, f.geometry.coordinates), f }))
    .sort((a, b) => a.d - b.d);
}

/**
 * Whether the page's list is the nearest `n` in order. The service measures on the ellipsoid and
 * this test on a sphere: two places whose distances differ by less than 0.5 % may swap.
 */
function sameOrder(shown, expected) {
  const problemsFound = [];
  const byId = new Map(expected.map((e) => [e.id, e]));
  const n = shown.length;
  for (let i = 0; i < n; i++) {
    const e = byId.get(shown[i]);
    if (!e) { problemsFound.push(`${shown[i]} is not a candidate`); continue; }
    if (i > 0) {
      const prev = byId.get(shown[i - 1]);
      if (prev && prev.d > e.d * 1.005 + 1) problemsFound.push(`#${i} ${prev.id} (${prev.d.toFixed(0)} m) before #${i + 1} ${e.id} (${e.d.toFixed(0)} m)`);
    }
  }
  // Nothing nearer left out.
  const cutoff = Math.max(...shown.map((id) => byId.get(id)?.d ?? 0));
  for (const e of expected.slice(0, n)) {
    if (!shown.includes(e.id) && e.d * 1.005 + 1 < cutoff) problemsFound.push(`${e.id} (${e.d.toFixed(0)} m) is missing`);
  }
  return problemsFound;
}

async function shownResults(page) {
  return page.$$eval('#results > li', (items) => items.map((li) => ({
    id: li.dataset.id,
    name: li.querySelector('h3')?.textContent,
    distance: li.querySelector('.distance')?.textContent,
    tel: li.querySelector('a.call')?.getAttribute('href') || null,
    directions: li.querySelector('a.directions')?.getAttribute('href') || null,
  })));
}

/** Wait for a search to finish (a new count of results, or a new status line). */
async function waitSearch(page, action) {
  const before = await page.evaluate(() => document.getElementById('status').textContent);
  await action();
  await page.waitForFunction((before) => {
    const s = document.getElementById('status').textContent;
    return s !== before && !document.getElementById('results').hasAttribute('aria-busy')
      && !/…$/.test(s);
  }, before, { timeout: TIMEOUT });
}

async function openFind(page, query = '') {
  await page.goto(`${base}/find${query}`, { waitUntil: 'domcontentloaded', timeout: TIMEOUT });
  await page.waitForSelector('body[data-ready="1"]', { timeout: TIMEOUT });
}

async function axe(page, label) {
  const violations = await wcagViolations(page);
  check(`${label}: axe-core finds no WCAG 2.1 AA violation`, violations.length === 0, violations.join('\n'));
}

/**
 * Every text and accessible-name string on the page (text, aria-label, title, alt, placeholder),
 * less the places' data (names, addresses: shown as imported, in whatever language they are).
 */
function pageStrings(page) {
  return page.evaluate(() => {
    let text = document.body.innerText;
    for (const node of document.querySelectorAll('[data-imported]')) text = text.replace(node.innerText, '');
    const out = [document.title, text];
    for (const node of document.querySelectorAll('[aria-label], [title], [alt], [placeholder], meta[name="description"]')) {
      for (const a of ['aria-label', 'title', 'alt', 'placeholder', 'content']) if (node.getAttribute(a)) out.push(node.getAttribute(a));
    }
    return out.join('\n');
  });
}

/** English strings of the page that must not show on the Spanish page. */
function englishLeftovers(text) {
  const flat = (o) => Object.values(o).flatMap((v) => (typeof v === 'object' ? flat(v) : [v]));
  const es = new Set(flat(STRINGS.es));
  const known = flat(STRINGS.en).filter((s) => !es.has(s) && s.length > 3)
    .map((s) => s.split(/\{\w+\}/).map((p) => p.trim()).filter((p) => p.length > 3)).flat();
  return [...new Set(known)].filter((s) => text.includes(s));
}

// ---------------------------------------------------------------------------------------------

async function phoneEnglish(browser) {
  const context = await browser.newContext({
    ...PHONE, locale: 'en-US', geolocation: HERE, permissions: ['geolocation'],
  });
  const page = await context.newPage();
  watch(page, 'phone en');
  await openFind(page);
  check('phone en: the page is in English', await page.evaluate(() => document.documentElement.lang) === 'en'
    && (await page.textContent('h1')) === STRINGS.en.heading, await page.textContent('h1'));

  // Chips with the layer's counts.
  const chips = await page.$$eval('#chips .chip', (cs) => cs.map((c) => ({
    value: c.querySelector('input').value, count: c.querySelector('.count').textContent,
    name: c.querySelector('.name').textContent,
  })));
  const counts = {};
  for (const f of layer) counts[f.properties.category] = (counts[f.properties.category] || 0) + 1;
  check('phone en: a chip per category, with its count', chips.length === Object.keys(counts).length
    && chips.every((c) => String(counts[c.value]) === c.count.replace(/,/g, '')), JSON.stringify(chips));
  check('phone en: chips are named in English', chips.find((c) => c.value === 'food_bank')?.name === STRINGS.en.cat.food_bank,
    JSON.stringify(chips));

  // Geolocation: the nearest places from the emulated position, in order.
  await waitSearch(page, () => page.click('#locate'));
  let shown = await shownResults(page);
  let issues = sameOrder(shown.map((r) => r.id), expectedOrder());
  check('phone en: "use my location" lists the 10 nearest places in order', shown.length === 10 && !issues.length,
    `${shown.map((r) => `${r.id} ${r.distance}`).join(', ')}\n${issues.join('\n')}`);
  const status = await page.textContent('#status');
  check('phone en: the live region says what was found', status === STRINGS.en.status_results
    .replace('{n}', '10').replace('{origin}', STRINGS.en.origin_location), status);
  const byId = new Map(layer.map((f) => [String(f.properties.id ?? f.id), f]));
  const tels = shown.map((r) => {
    const phone = byId.get(r.id)?.properties.phone;
    const dial = phone?.split(/\s*ext\.?\s*/i)[0];
    return { id: r.id, phone, tel: r.tel, ok: phone ? r.tel === `tel:${dial.replace(/[^\d+]/g, '')}` : r.tel === null };
  });
  check('phone en: every place with a phone has a tap-to-call tel: link', tels.every((x) => x.ok) && tels.some((x) => x.tel),
    JSON.stringify(tels.filter((x) => !x.ok)));
  if (token) {
    const facts = await page.$$eval(`#results > li[data-id="${EXTRA.id}"] .facts > *`, (n) => n.map((x) => x.textContent));
    check('phone en: hours, languages and capacity are shown as imported', JSON.stringify(facts) === JSON.stringify(
      [STRINGS.en.hours, EXTRA.hours, STRINGS.en.languages, EXTRA.languages, STRINGS.en.capacity, EXTRA.capacity]),
    JSON.stringify(facts));
    check('phone en: a phone number with an extension dials the number', shown.find((r) => r.id === EXTRA.id)?.tel
      === 'tel:2135550199', JSON.stringify(shown.find((r) => r.id === EXTRA.id)));
  }
  const first = byId.get(shown[0].id);
  const [lon, lat] = first.geometry.coordinates;
  check('phone en: a directions link to the place', shown[0].directions
    === `https://www.google.com/maps/dir/?api=1&destination=${lat.toFixed(6)},${lon.toFixed(6)}`, shown[0].directions);
  const distance = new Intl.NumberFormat('en-US', { style: 'unit', unit: 'meter', maximumFractionDigits: 0 });
  const d0 = expectedOrder()[0].d;
  check('phone en: distances are formatted for English', d0 >= 995 || shown[0].distance
    === `${distance.format(Math.max(10, Math.round(d0 / 10) * 10))} away`, `${shown[0].distance} for ${d0.toFixed(1)} m`);
  const layout = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    map: document.getElementById('map').getBoundingClientRect().toJSON(),
  }));
  check('phone en: no horizontal scrolling, the map is full width', layout.scroll <= 390 && layout.map.width >= 340,
    JSON.stringify(layout));
  await screenshot(page, 'phone-en-location');
  await screenshot(page, 'phone-en-top', { fullPage: false });

  // More places: the next ten, in order, with the keyboard focus on the first new one.
  await waitSearch(page, () => page.click('#more'));
  const more = await shownResults(page);
  issues = sameOrder(more.map((r) => r.id), expectedOrder());
  const focusedMore = await page.evaluate(() => document.activeElement?.id);
  check('phone en: "show more places" lists the 20 nearest in order and focuses the 11th', more.length === 20
    && !issues.length && focusedMore === 'result-10-name', `${more.length} places, focus ${focusedMore}\n${issues.join('\n')}`);

  // A category chip narrows the list.
  await waitSearch(page, () => page.click('#chips .chip:has(input[value="food_bank"])'));
  shown = await shownResults(page);
  issues = sameOrder(shown.map((r) => r.id), expectedOrder(['food_bank']));
  check('phone en: choosing "food banks" lists the nearest food banks in order',
    shown.length === Math.min(10, counts.food_bank) && !issues.length, `${JSON.stringify(shown)}\n${issues.join('\n')}`);
  check('phone en: the choice is announced', (await page.textContent('#status')).includes(STRINGS.en.cat.food_bank));
  await axe(page, 'phone en (results)');

  // A block id as the origin.
  const block = shown.length ? byId.get(shown[0].id)?.properties.block_id : null;
  await page.fill('#block-id', block || '');
  await waitSearch(page, () => page.click('#block-form button[type="submit"]'));
  shown = await shownResults(page);
  check('phone en: a block id as the origin lists places', shown.length > 0
    && (await page.textContent('#status')).includes(block), `${block}: ${await page.textContent('#status')}`);
  await page.fill('#block-id', '999999999999999');
  await waitSearch(page, () => page.click('#block-form button[type="submit"]'));
  const blockError = await page.evaluate(() => ({
    text: document.getElementById('block-error').textContent,
    invalid: document.getElementById('block-id').getAttribute('aria-invalid'),
  }));
  check('phone en: an unknown block id is said next to the field', blockError.invalid === 'true'
    && blockError.text === STRINGS.en.error_block_unknown.replace('{id}', '999999999999999'), JSON.stringify(blockError));
  await page.fill('#block-id', '');

  // A tap on the map as the origin (once the map is drawn).
  await waitSearch(page, () => page.click('#clear-categories'));
  await page.waitForSelector('body[data-map-ready="1"]', { timeout: TIMEOUT });
  await page.waitForFunction(() => !window.belongFindMap.isMoving(), null, { timeout: TIMEOUT });
  await page.locator('#map').scrollIntoViewIfNeeded();
  // A point of the map clear of the pins and controls, off the centre (where the last search was).
  const spot = await page.evaluate(() => {
    const canvas = window.belongFindMap.getCanvas();
    const r = canvas.getBoundingClientRect();
    for (const [fx, fy] of [[0.3, 0.3], [0.7, 0.7], [0.3, 0.7], [0.7, 0.3], [0.2, 0.5], [0.8, 0.5]]) {
      const x = r.width * fx;
      const y = r.height * fy;
      const clear = [[0, 0], [16, 0], [-16, 0], [0, 16], [0, -16]]
        .every(([dx, dy]) => document.elementFromPoint(r.left + x + dx, r.top + y + dy) === canvas);
      if (clear) return { x, y };
    }
    return null;
  });
  if (!spot) throw new Error('no free spot on the map to tap');
  const expectedTap = await page.evaluate(({ x, y }) => window.belongFindMap.unproject([x, y]).toArray(), spot);
  await waitSearch(page, () => page.locator('#map canvas').tap({ position: spot }));
  const tapped = (await page.evaluate(() => document.body.dataset.origin)).split(',').map(Number);
  check('phone en: the origin is where the map was tapped', haversine(tapped, expectedTap) < 30,
    `${tapped} vs ${expectedTap}`);
  shown = await shownResults(page);
  issues = sameOrder(shown.map((r) => r.id), expectedOrder([], tapped));
  check('phone en: a tap on the map lists the places nearest that point', shown.length === 10 && !issues.length
    && (await page.textContent('#status')).includes(STRINGS.en.origin_point), `${tapped}: ${issues.join('\n')}`);
  await screenshot(page, 'phone-en-map-tap');

  // Offline copy ready?
  await page.waitForSelector('body[data-offline-ready="1"]', { timeout: TIMEOUT });
  check('phone en: the page says it is saved for offline use', await page.isVisible('#offline-ready'));
  return { context, page };
}

async function spanish(browser, { label, query, locale, size }) {
  const context = await browser.newContext({ ...size, locale, geolocation: HERE, permissions: ['geolocation'] });
  const page = await context.newPage();
  watch(page, label);
  await openFind(page, query);
  const lang = await page.evaluate(() => document.documentElement.lang);
  check(`${label}: the page is in Spanish`, lang === 'es' && (await page.textContent('h1')) === STRINGS.es.heading
    && (await page.title()) === STRINGS.es.title, `${lang}: ${await page.textContent('h1')}`);
  const chip = await page.textContent('#chips .chip:has(input[value="food_bank"]) .name');
  check(`${label}: chips are named in Spanish`, chip === STRINGS.es.cat.food_bank, chip);
  await waitSearch(page, () => page.click('#locate'));
  const shown = await shownResults(page);
  const issues = sameOrder(shown.map((r) => r.id), expectedOrder());
  check(`${label}: the nearest places in order`, shown.length === 10 && !issues.length, issues.join('\n'));
  const status = await page.textContent('#status');
  check(`${label}: the live region speaks Spanish`, status === STRINGS.es.status_results
    .replace('{n}', '10').replace('{origin}', STRINGS.es.origin_location), status);
  const d0 = expectedOrder()[0].d;
  const meters = new Intl.NumberFormat('es-US', { style: 'unit', unit: 'meter', maximumFractionDigits: 0 });
  check(`${label}: distances are formatted for Spanish`, d0 >= 995
    || shown[0].distance === `a ${meters.format(Math.max(10, Math.round(d0 / 10) * 10))}`, shown[0].distance);
  const call = await page.textContent('#results a.call');
  check(`${label}: call links in Spanish`, call.startsWith('Llamar al '), call);
  if (token) {
    const facts = await page.$$eval(`#results > li[data-id="${EXTRA.id}"] .facts > *`, (n) => n.map((x) => x.textContent));
    check(`${label}: the place's fields are labelled in Spanish, its data as imported`, JSON.stringify(facts) === JSON.stringify(
      [STRINGS.es.hours, EXTRA.hours, STRINGS.es.languages, EXTRA.languages, STRINGS.es.capacity, EXTRA.capacity]),
    JSON.stringify(facts));
  }
  // The map's own controls, once drawn.
  await page.waitForSelector('body[data-map-ready="1"]', { timeout: TIMEOUT });
  const zoom = await page.getAttribute('.maplibregl-ctrl-zoom-in', 'aria-label');
  check(`${label}: the map's controls are in Spanish`, zoom === STRINGS.es.maplibre['NavigationControl.ZoomIn'], zoom);
  const leftovers = englishLeftovers(await pageStrings(page));
  check(`${label}: no English strings left`, leftovers.length === 0, leftovers.join(' | '));
  await axe(page, label);
  await screenshot(page, label.replace(/\W+/g, '-'));
  return { context, page };
}

async function languageSwitch(page) {
  await page.click('.lang-switch a[data-lang="en"]');
  const after = await page.evaluate(() => ({
    lang: document.documentElement.lang, h1: document.querySelector('h1').textContent,
    status: document.getElementById('status').textContent, url: window.location.search,
    current: document.querySelector('.lang-switch a[aria-current="true"]')?.dataset.lang,
  }));
  check('language switch: Spanish to English in place, results kept', after.lang === 'en' && after.h1 === STRINGS.en.heading
    && after.status.startsWith('10 places') && after.url.includes('lang=en') && after.current === 'en', JSON.stringify(after));
  await page.click('.lang-switch a[data-lang="es"]');
  check('language switch: and back', (await page.textContent('h1')) === STRINGS.es.heading);
}

async function desktop(browser) {
  for (const lang of ['en', 'es']) {
    const context = await browser.newContext({ ...DESKTOP, locale: 'en-US', geolocation: HERE, permissions: ['geolocation'] });
    const page = await context.newPage();
    watch(page, `desktop ${lang}`);
    await openFind(page, `?lang=${lang}`);
    await axe(page, `desktop ${lang} (start)`);
    // Keyboard: the skip link comes first and leads to the results.
    await page.keyboard.press('Tab');
    const skip = await page.evaluate(() => document.activeElement.className);
    await page.keyboard.press('Enter');
    const focused = await page.evaluate(() => document.activeElement.id);
    check(`desktop ${lang}: the first Tab is the skip link, which leads to the results`, skip === 'skip-link'
      && focused === 'results-heading', `${skip} -> ${focused}`);
    await waitSearch(page, () => page.click('#locate'));
    await page.waitForSelector('body[data-map-ready="1"]', { timeout: TIMEOUT });
    const layout = await page.evaluate(() => ({
      map: document.getElementById('map').getBoundingClientRect().toJSON(),
      list: document.getElementById('results').getBoundingClientRect().toJSON(),
    }));
    check(`desktop ${lang}: list and map side by side`, layout.map.left > layout.list.right - 1 && layout.map.height > 400,
      JSON.stringify(layout));
    await axe(page, `desktop ${lang} (results)`);
    await screenshot(page, `desktop-${lang}`, { fullPage: false });
    await context.close();
  }
}

async function offline(context, page) {
  offlinePhase = true;
  await context.setOffline(true);
  if (serverPid) {
    process.kill(serverPid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await fetch(`${base}/health`);
      } catch {
        break;
      }
      if (Date.now() > deadline) throw new Error('the server did not stop');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await page.reload({ waitUntil: 'domcontentloaded', timeout: TIMEOUT });
  await page.waitForSelector('body[data-ready="1"]', { timeout: TIMEOUT });
  const notice = await page.evaluate(() => ({
    hidden: document.getElementById('network').hidden, text: document.getElementById('network').textContent,
  }));
  check('offline: the page opens from the saved copy and says it is offline', !notice.hidden
    && notice.text.startsWith(STRINGS.en.offline.split('{date}')[0]), JSON.stringify(notice));
  const chips = await page.$$eval('#chips .chip', (cs) => cs.length);
  check('offline: the category chips are there', chips > 0, `${chips} chips`);
  await waitSearch(page, () => page.click('#locate'));
  let shown = await shownResults(page);
  let issues = sameOrder(shown.map((r) => r.id), expectedOrder());
  check('offline: "use my location" still lists the 10 nearest places in order', shown.length === 10 && !issues.length,
    `${JSON.stringify(shown.map((r) => r.id))}\n${issues.join('\n')}`);
  await waitSearch(page, () => page.click('#chips .chip:has(input[value="clinic"])'));
  shown = await shownResults(page);
  issues = sameOrder(shown.map((r) => r.id), expectedOrder(['clinic']));
  check('offline: and the nearest clinics', shown.length === Math.min(10, layer.filter((f) => f.properties.category === 'clinic').length)
    && !issues.length, issues.join('\n'));
  await screenshot(page, 'phone-en-offline');
  // The Spanish page offline, from the same saved copy.
  await page.goto(`${base}/find?lang=es`, { waitUntil: 'domcontentloaded', timeout: TIMEOUT });
  await page.waitForSelector('body[data-ready="1"]', { timeout: TIMEOUT });
  const es = await page.evaluate(() => ({
    lang: document.documentElement.lang, h1: document.querySelector('h1').textContent,
    notice: document.getElementById('network').textContent,
  }));
  check('offline: ?lang=es opens in Spanish and says it is offline', es.lang === 'es' && es.h1 === STRINGS.es.heading
    && es.notice.startsWith(STRINGS.es.offline.split('{date}')[0]), JSON.stringify(es));
  await waitSearch(page, () => page.click('#locate'));
  shown = await shownResults(page);
  check('offline: Spanish, the nearest places (the clinics chosen before)', shown.length > 0
    && (await page.textContent('#status')).includes(STRINGS.es.cat.clinic), await page.textContent('#status'));
  await screenshot(page, 'phone-es-offline');
}

async function addExtraPlace() {
  const columns = Object.keys(EXTRA);
  const quote = (v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const csv = `${columns.join(',')}\n${columns.map((c) => quote(String(EXTRA[c]))).join(',')}\n`;
  const res = await fetch(`${base}/imports/resources`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv' }, body: csv,
  });
  if (!res.ok) throw new Error(`POST /imports/resources: ${res.status} ${await res.text()}`);
}

async function main() {
  if (token) await addExtraPlace();
  const res = await fetch(`${base}/collections/resources/items?f=geojson&limit=10000`);
  layer = (await res.json()).features.filter((f) => f.geometry?.type === 'Point');
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-sandbox', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  } catch (e) {
    console.log(JSON.stringify({ ok: false, base, error: `cannot start Chromium at ${executablePath}: ${e.message}` }));
    process.exit(2);
  }
  try {
    let english = null;
    try {
      english = await phoneEnglish(browser);
    } catch (e) {
      check('phone en run completed', false, e.stack || String(e));
    }
    for (const run of [
      { label: 'phone es (?lang=es)', query: '?lang=es', locale: 'en-US', size: PHONE },
      { label: 'phone es (Accept-Language)', query: '', locale: 'es-MX', size: PHONE },
    ]) {
      try {
        const { context, page } = await spanish(browser, run);
        if (run.query) await languageSwitch(page);
        await context.close();
      } catch (e) {
        check(`${run.label} run completed`, false, e.stack || String(e));
      }
    }
    try {
      await desktop(browser);
    } catch (e) {
      check('desktop run completed', false, e.stack || String(e));
    }
    if (english) {
      try {
        await offline(english.context, english.page);
      } catch (e) {
        check('offline run completed', false, e.stack || String(e));
      }
    }
  } finally {
    await browser.close();
  }
  report();
}

function report() {
  check('no console errors or warnings, page errors or failed requests', problems.length === 0, problems.join('\n'));
  const failed = checks.filter((c) => !c.ok);
  console.log(JSON.stringify({ ok: failed.length === 0, base, passed: checks.length - failed.length, failed: failed.length,
    checks, screenshots }, null, 2));
  console.log(`${checks.length - failed.length} passed, ${failed.length} failed`);
  for (const f of failed) console.error(`FAILED: ${f.name}${f.detail ? `\n  ${f.detail.replace(/\n/g, '\n  ')}` : ''}`);
  process.exit(failed.length ? 1 : 0);
}

setTimeout(() => {
  check('finished within the time limit', false, `still running after ${WATCHDOG / 1000} s`);
  report();
}, WATCHDOG).unref();

await main();
