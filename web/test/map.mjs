#!/usr/bin/env node
// End-to-end test of the coverage map page in a real headless Chromium (WebGL by SwiftShader).
//
//   node web/test/map.mjs [BASE_URL]        (default http://127.0.0.1:8080; a running `belong serve`)
//
// Env: CHROMIUM (default /usr/bin/chromium), MAP_TEST_SCREENSHOTS (folder for the screenshots;
// default a new temporary folder), BELONG_TOKEN (a manager token: also check that the page follows
// a change made through the API), MAP_TEST_LIMIT_SECS (give up after this long; default 280). Prints one JSON summary on stdout; exits 1 when any check
// fails, 2 when the browser cannot be started.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { wcagViolations } from './axe.mjs';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';

const base = (process.argv[2] || process.env.BELONG_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// A manager token enables the live-update check (it adds an ambassador, then deletes it).
const token = process.env.BELONG_TOKEN || '';
const shots = process.env.MAP_TEST_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'belong-map-shots-'));
mkdirSync(shots, { recursive: true });
// SwiftShader renders on the CPU: a 2-core machine needs generous waits.
const TIMEOUT = 90_000;
const WATCHDOG = Number(process.env.MAP_TEST_LIMIT_SECS || 280) * 1000;

const checks = [];
const problems = [];
const screenshots = [];

function check(name, ok, detail = '') {
  checks.push({ name, ok: Boolean(ok), detail });
  return Boolean(ok);
}

/** Record console errors, page errors, failed requests and HTTP errors of `page`. */
function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      problems.push(`${label}: console.${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText || 'failed';
    // A request the page itself cancelled (a tile scrolled out of view) is not a failure.
    if (why !== 'net::ERR_ABORTED') problems.push(`${label}: request failed: ${req.url()} (${why})`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`${label}: HTTP ${res.status()} for ${res.url()}`);
  });
}

async function waitIdle(page) {
  await page.evaluate(
    (timeout) => new Promise((resolve, reject) => {
      const map = window.belongMap;
      const timer = setTimeout(() => reject(new Error(`the map did not become idle within ${timeout} ms`)), timeout);
      // `idle` fires once nothing is loading or animating; a map already idle fires it on the
      // next render only, so ask for one.
      map.once('idle', () => {
        clearTimeout(timer);
        resolve();
      });
      map.triggerRepaint();
    }),
    TIMEOUT,
  );
}

async function openMap(page) {
  await page.goto(`${base}/map`, { waitUntil: 'domcontentloaded', timeout: TIMEOUT });
  await page.waitForSelector('body[data-ready="1"]', { timeout: TIMEOUT });
  await waitIdle(page);
}

/** Count the rendered features of some layers. */
function rendered(page, layers) {
  return page.evaluate((layers) => window.belongMap.queryRenderedFeatures({ layers }).length, layers);
}

/**
 * A covered and an uncovered block, each with a screen point well inside it (no edge, no
 * resource dot within a few pixels), in CSS pixels relative to the page.
 */
function pickBlocks(page) {
  return page.evaluate(() => {
    const map = window.belongMap;
    const canvas = map.getCanvas().getBoundingClientRect();
    const features = map.queryRenderedFeatures({ layers: ['blocks-fill'] });
    const card = document.getElementById('block-card');
    const cardRect = card.hidden ? null : card.getBoundingClientRect();
    const inside = (x, y) => {
      if (x < 10 || y < 10 || x > canvas.width - 10 || y > canvas.height - 10) return false;
      if (cardRect && x + canvas.left >= cardRect.left - 8 && x + canvas.left <= cardRect.right + 8
        && y + canvas.top >= cardRect.top - 8 && y + canvas.top <= cardRect.bottom + 8) return false;
      return true;
    };
    const interior = (feature) => {
      const id = feature.properties.block_id;
      let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
      const walk = (c) => {
        if (typeof c[0] === 'number') {
          minX = Math.min(minX, c[0]); maxX = Math.max(maxX, c[0]);
          minY = Math.min(minY, c[1]); maxY = Math.max(maxY, c[1]);
        } else c.forEach(walk);
      };
      walk(feature.geometry.coordinates);
      const same = (x, y) => {
        const hit = map.queryRenderedFeatures([x, y], { layers: ['blocks-fill'] });
        return hit.length > 0 && hit[0].properties.block_id === id;
      };
      for (let i = 1; i < 8; i++) {
        for (let j = 1; j < 8; j++) {
          const p = map.project([minX + ((maxX - minX) * i) / 8, minY + ((maxY - minY) * j) / 8]);
          if (!inside(p.x, p.y)) continue;
          const r = 6;
          if (![[0, 0], [r, 0], [-r, 0], [0, r], [0, -r], [r, r], [-r, -r], [r, -r], [-r, r]]
            .every(([dx, dy]) => same(p.x + dx, p.y + dy))) continue;
          const dots = map.getLayer('resources-circle')
            ? map.queryRenderedFeatures([[p.x - 12, p.y - 12], [p.x + 12, p.y + 12]], { layers: ['resources-circle'] })
            : [];
          if (dots.length) continue;
          return { id, x: p.x + canvas.left, y: p.y + canvas.top, mapX: p.x, mapY: p.y, props: feature.properties };
        }
      }
      return null;
    };
    const seen = new Set();
    let covered = null;
    let uncovered = null;
    for (const f of features) {
      const id = f.properties.block_id;
      if (seen.has(id)) continue;
      seen.add(id);
      const isCovered = f.properties.covered === true;
      if (isCovered ? covered : uncovered) continue;
      const p = interior(f);
      if (!p) continue;
      if (isCovered) covered = p;
      else uncovered = p;
      if (covered && uncovered) break;
    }
    return { covered, uncovered, count: features.length };
  });
}

/** Mean colour of a 5x5 pixel square of a PNG screenshot, at CSS pixel (x, y). */
function sample(png, x, y, scale = 1) {
  const cx = Math.round(x * scale);
  const cy = Math.round(y * scale);
  const sum = [0, 0, 0];
  let n = 0;
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const i = ((cy + dy) * png.width + (cx + dx)) * 4;
      sum[0] += png.data[i]; sum[1] += png.data[i + 1]; sum[2] += png.data[i + 2];
      n++;
    }
  }
  return sum.map((s) => Math.round(s / n));
}

const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** How the page writes a percentage and a count. */
const pct = (v) => `${Number(v).toFixed(1)}%`;
const count = (n) => Number(n).toLocaleString('en-US');

async function getJson(path) {
  const res = await fetch(`${base}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** What the trend chart draws: points of its line, latest value, hidden table rows, size. */
function trendChart(page) {
  return page.evaluate(() => {
    const figure = document.getElementById('trend-chart');
    const svg = figure.querySelector('svg');
    const line = figure.querySelector('.trend-line');
    const box = svg?.getBoundingClientRect();
    return {
      interval: figure.dataset.interval,
      points: line && line.getAttribute('visibility') !== 'hidden' ? (line.getAttribute('d').match(/[ML]/g) || []).length : 0,
      dataPoints: Number(line?.dataset.points ?? -1),
      latest: figure.querySelector('.trend-latest')?.textContent ?? null,
      dot: Boolean(figure.querySelector('.trend-dot')),
      label: svg?.getAttribute('aria-label') ?? '',
      change: document.getElementById('trend-change').textContent,
      tableRows: document.querySelectorAll('#trend-table tbody tr').length,
      box: box ? { left: box.left, right: box.right, width: box.width, height: box.height } : null,
    };
  });
}

/** The roll-up table's rows as drawn: group, and the texts of their numbers. */
function rollupTable(page) {
  return page.evaluate(() => [...document.querySelectorAll('#rollup-table tbody tr[data-group]')].map((tr) => ({
    group: tr.dataset.group || null,
    title: tr.querySelector('th .rollup-title').textContent,
    pct: tr.querySelector('.rollup-pct .rollup-value').textContent,
    blocks: tr.querySelector('.rollup-pct .rollup-sub').textContent,
    uncovered: tr.querySelector('.rollup-uncovered .rollup-value').textContent,
    residents: tr.querySelector('.rollup-uncovered .rollup-sub').textContent,
  })));
}

/**
 * The trend chart and the roll-up table render the demo's data: one chart point per
 * `/coverage/history` row with the latest value of `/coverage`, and one table row per
 * `/coverage/rollup?by=tract` row with the same numbers. `label` prefixes the check names.
 */
async function dashboard(page, label, viewportWidth) {
  await page.waitForSelector('#trend-chart[data-points] svg', { timeout: TIMEOUT });
  await page.waitForSelector('#rollup-table tbody tr[data-group]', { timeout: TIMEOUT });
  const summary = await getJson('/coverage');
  const chart = await trendChart(page);
  const history = await getJson(`/coverage/history?interval=${chart.interval}`);
  check(`${label}: the trend chart draws one point per /coverage/history row`,
    history.length >= 1 && chart.points === history.length && chart.dataPoints === history.length
      && chart.tableRows === history.length,
    `${chart.points} points in the line (${chart.interval}), ${chart.tableRows} rows in its table; /coverage/history has ${history.length}`);
  check(`${label}: the trend chart marks the latest value, the coverage of /coverage`,
    chart.dot && chart.latest === pct(summary.coverage_pct) && chart.label.includes(pct(summary.coverage_pct))
      && pct(history[history.length - 1]?.coverage_pct) === pct(summary.coverage_pct),
    `latest "${chart.latest}", aria-label "${chart.label}"; /coverage ${summary.coverage_pct}`);
  check(`${label}: the trend chart fits the screen`, chart.box && chart.box.width >= 200 && chart.box.height >= 100
    && chart.box.left >= 0 && chart.box.right <= viewportWidth, JSON.stringify(chart.box));

  const rollup = await getJson('/coverage/rollup?by=tract');
  const rows = await rollupTable(page);
  check(`${label}: the roll-up table has one row per /coverage/rollup?by=tract row`,
    rows.length === rollup.length && rollup.length > 0, `${rows.length} rows drawn, ${rollup.length} from the API`);
  const wrong = rollup.filter((r) => {
    const row = rows.find((x) => x.group === r.group);
    return !row || row.pct !== pct(r.coverage_pct) || row.uncovered !== count(r.residents_in_uncovered_blocks)
      || row.blocks !== `${count(r.covered_blocks)} of ${count(r.blocks)}` || row.residents !== `of ${count(r.residents)}`;
  });
  const sample = rows.find((x) => x.group === rollup[0]?.group);
  check(`${label}: the roll-up rows show the API's numbers`, rollup.length > 0 && wrong.length === 0,
    `first: ${JSON.stringify(sample)} vs ${JSON.stringify(rollup[0])}; ${wrong.length} differ${wrong.length ? `: ${JSON.stringify(wrong[0])}` : ''}`);
  return { summary, history, rollup };
}

/**
 * The roll-up table by keyboard and mouse: sorting by residents in uncovered blocks and by
 * coverage, a tract outlined on the map, and the CSV link.
 */
async function rollupInteractions(page) {
  // The table as the API has it now (the live-update check may have changed and restored it).
  const rollup = await getJson('/coverage/rollup?by=tract');
  await page.click('#refresh');
  await page.waitForFunction((want) => want.every(([group, blocks]) => document.querySelector(
    `#rollup-table tr[data-group="${group}"] .rollup-pct .rollup-sub`)?.textContent === blocks),
  rollup.filter((r) => r.group !== null).map((r) => [r.group, `${count(r.covered_blocks)} of ${count(r.blocks)}`]),
  { timeout: TIMEOUT });
  const header = (key) => page.locator(`#rollup-table thead button[data-sort="${key}"]`);
  const sort = (key) => page.locator(`#rollup-table thead th:has(button[data-sort="${key}"])`).getAttribute('aria-sort');
  const first = () => page.locator('#rollup-table tbody tr[data-group]').first().getAttribute('data-group');
  const grouped = rollup.filter((r) => r.group !== null);
  const most = [...grouped].sort((a, b) => b.residents_in_uncovered_blocks - a.residents_in_uncovered_blocks)[0];
  await header('uncovered').focus();
  await page.keyboard.press('Enter');
  check('roll-up: Enter on "Uncovered residents" sorts by it, most first',
    (await sort('uncovered')) === 'descending' && (await first()) === most.group,
    `aria-sort ${await sort('uncovered')}, first row ${await first()}, expected ${most.group}`);
  const least = [...grouped].sort((a, b) => a.coverage_pct - b.coverage_pct || b.residents_in_uncovered_blocks - a.residents_in_uncovered_blocks)[0];
  await header('coverage').click();
  check('roll-up: a click on "Coverage" sorts by coverage, lowest first',
    (await sort('coverage')) === 'ascending' && (await sort('uncovered')) === null && (await first()) === least.group,
    `first row ${await first()}, expected ${least.group}`);
  await header('coverage').click();
  check('roll-up: a second click reverses the order', (await sort('coverage')) === 'descending');

  const href = await page.getAttribute('#rollup-csv', 'href');
  const csv = await fetch(new URL(href, `${base}/map`));
  const lines = (await csv.text()).trim().split(/\r?\n/);
  check('roll-up: the CSV link downloads the table',
    /by=tract/.test(href) && /f=csv/.test(href) && csv.ok && (csv.headers.get('content-type') || '').includes('text/csv')
      && lines.length === rollup.length + 1 && lines[0].startsWith('group,'),
    `${href}: ${csv.status} ${csv.headers.get('content-type')}, ${lines.length} lines`);

  // Choosing a tract outlines its blocks on the map (and flies there); choosing it again clears it.
  const tract = grouped[0].group;
  const button = page.locator(`#rollup-table .rollup-name[data-group="${tract}"]`);
  await button.click();
  // The page may fly twice: to what the loaded tiles show of the tract, then to all of it.
  for (let i = 0; i < 3; i++) {
    await page.waitForFunction(() => !window.belongMap.isMoving(), null, { timeout: TIMEOUT });
    await waitIdle(page);
  }
  const outlined = await page.evaluate(() => {
    const map = window.belongMap;
    const ids = [...new Set(map.queryRenderedFeatures({ layers: ['blocks-group'] }).map((f) => String(f.properties.block_id)))];
    return { ids, filter: JSON.stringify(map.getFilter('blocks-group')), hint: document.getElementById('rollup-hint').textContent };
  });
  check('roll-up: choosing a tract outlines its blocks on the map',
    (await button.getAttribute('aria-pressed')) === 'true' && outlined.ids.length > 0
      && outlined.ids.every((id) => id.startsWith(tract)) && outlined.filter.includes(tract),
    `${outlined.ids.length} blocks outlined (${outlined.ids.slice(0, 3).join(', ')}…); hint "${outlined.hint}"`);
  await screenshot(page, 'desktop-tract');
  await button.click();
  await waitIdle(page);
  const left = await rendered(page, ['blocks-group']);
  check('roll-up: choosing the tract again clears the outline',
    (await button.getAttribute('aria-pressed')) === 'false' && left === 0, `${left} blocks still outlined`);
}

/** The trend chart read by keyboard: focus shows the latest point, arrow keys step back. */
async function trendKeyboard(page) {
  // After the roll-up checks' refresh, the chart shows the history as the API has it now.
  const interval = await page.getAttribute('#trend-chart', 'data-interval');
  const history = await getJson(`/coverage/history?interval=${interval}`);
  await page.waitForFunction((latest) => document.querySelector('#trend-chart .trend-latest')?.textContent === latest,
    pct(history[history.length - 1]?.coverage_pct), { timeout: TIMEOUT });
  await page.locator('#trend-chart svg').focus();
  await page.keyboard.press('End');
  const tip = () => page.evaluate(() => {
    const t = document.querySelector('#trend-chart .trend-tip');
    return { hidden: t.hidden, index: Number(t.dataset.index), text: t.textContent, live: document.getElementById('trend-live').textContent };
  });
  let t = await tip();
  const last = history[history.length - 1];
  check('trend chart: focus and End show the latest point', !t.hidden && t.index === history.length - 1
    && t.text.includes(pct(last.coverage_pct)) && t.live.includes(pct(last.coverage_pct)), JSON.stringify(t));
  if (history.length > 1) {
    await page.keyboard.press('ArrowLeft');
    t = await tip();
    check('trend chart: ArrowLeft reads the point before', t.index === history.length - 2
      && t.text.includes(pct(history[history.length - 2].coverage_pct)), JSON.stringify(t));
  }
  await page.locator('#trend').screenshot({ path: join(shots, 'desktop-trend.png') });
  screenshots.push(join(shots, 'desktop-trend.png'));
  await page.keyboard.press('Escape');
  check('trend chart: Escape hides the tooltip', (await tip()).hidden);
}

/** A day as `YYYY-MM-DD`, `i` days after 2026-01-05 (a Monday). */
const day = (i) => new Date(Date.UTC(2026, 0, 5 + i)).toISOString().slice(0, 10);

/** A made-up history of `n` days (or weeks), coverage rising from 5 % to 5 + n/10 %. */
function madeUpHistory(n, step = 1) {
  return Array.from({ length: n }, (_, i) => {
    const covered = 25 + Math.round(i / 2);
    return {
      date: day(i * step), coverage_pct: Math.round((covered / 500) * 10000) / 100, covered_blocks: covered, blocks: 500,
      ambassadors: covered + 3, residents: 19960,
    };
  });
}

/**
 * The chart with histories the demo cannot have yet (it starts when the demo is loaded): a long
 * one (weekly points chosen automatically, then daily ones by choice), none, and a single day.
 */
async function trendShapes(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  watch(page, 'made-up history');
  const histories = {
    long: { day: madeUpHistory(400), week: madeUpHistory(58, 7) },
    none: { day: [], week: [] },
    one: { day: madeUpHistory(1), week: madeUpHistory(1) },
  };
  let shape = 'long';
  const asked = [];
  await page.route(/\/coverage\/history(\?|$)/, (route) => {
    const interval = new URL(route.request().url()).searchParams.get('interval') || 'day';
    asked.push(interval);
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(histories[shape][interval]) });
  });
  await openMap(page);
  const chart = () => trendChart(page);
  await page.waitForFunction(() => document.getElementById('trend-chart').dataset.interval === 'week', null, { timeout: TIMEOUT });
  let c = await chart();
  const weeks = histories.long.week;
  check('made-up history: 400 days are drawn as weekly points', c.points === weeks.length && c.tableRows === weeks.length
    && c.latest === pct(weeks[weeks.length - 1].coverage_pct) && await page.isChecked('input[name="trend-interval"][value="week"]')
    && /weeks/.test(c.change), `${c.points} points, latest ${c.latest}, asked ${asked.join(',')}, "${c.change}"`);
  await page.locator('#trend').screenshot({ path: join(shots, 'made-up-weekly.png') });
  screenshots.push(join(shots, 'made-up-weekly.png'));

  await page.locator('input[name="trend-interval"][value="day"]').check();
  await page.waitForFunction(() => document.getElementById('trend-chart').dataset.interval === 'day', null, { timeout: TIMEOUT });
  c = await chart();
  check('made-up history: choosing "Day" draws every day', c.points === 400 && c.box.right <= 1280
    && c.change.includes('in the last 7 days'), `${c.points} points, "${c.change}"`);
  await page.locator('#trend').screenshot({ path: join(shots, 'made-up-daily.png') });
  screenshots.push(join(shots, 'made-up-daily.png'));

  shape = 'none';
  await page.click('#refresh');
  await page.waitForFunction(() => document.getElementById('trend-chart').dataset.points === '0', null, { timeout: TIMEOUT });
  c = await chart();
  check('made-up history: no history yet says so and draws no line', c.points === 0 && !c.dot && c.tableRows === 0
    && /no history yet/i.test(c.change) && /no history yet/i.test(c.label), JSON.stringify(c));

  shape = 'one';
  await page.click('#refresh');
  await page.waitForFunction(() => document.getElementById('trend-chart').dataset.points === '1', null, { timeout: TIMEOUT });
  c = await chart();
  const only = histories.one.day[0];
  check('made-up history: a single day is a marked point with its value', c.points === 1 && c.dot
    && c.latest === pct(only.coverage_pct) && /since/i.test(c.change), JSON.stringify(c));
  await context.close();
}

/** The downloads panel offers every format of each layer, and a GeoPackage link downloads the file. */
async function downloads(page) {
  await page.click('#downloads > summary');
  const links = await page.locator('#downloads a').evaluateAll((as) => as.map((a) => ({
    text: a.textContent.trim(), href: a.getAttribute('href'), name: a.getAttribute('download'),
    visible: a.getBoundingClientRect().width > 0,
  })));
  const formats = (id) => links.filter((l) => l.href.startsWith(`collections/${id}/items`)).map((l) => l.text).join(',');
  const every = 'GeoJSON,CSV,GeoPackage,FlatGeobuf,Shapefile';
  check('downloads: blocks, resources and school readiness each come in five formats',
    ['blocks', 'resources', 'school-readiness'].every((id) => formats(id) === every) && links.every((l) => l.visible),
    JSON.stringify(links));
  const gpkg = links.find((l) => l.name === 'blocks.gpkg');
  const res = await fetch(new URL(gpkg.href, `${base}/map`));
  const bytes = new Uint8Array(await res.arrayBuffer());
  check('downloads: the GeoPackage link downloads a GeoPackage of the whole layer',
    res.ok && res.headers.get('content-type') === 'application/geopackage+sqlite3'
      && (res.headers.get('content-disposition') || '').includes('blocks.gpkg')
      && new TextDecoder().decode(bytes.slice(0, 15)) === 'SQLite format 3',
    `${gpkg.href}: ${res.status} ${res.headers.get('content-type')} ${res.headers.get('content-disposition')}, ${bytes.length} bytes`);
  const shp = links.find((l) => l.name === 'blocks.shp.zip');
  const zip = await fetch(new URL(shp.href, `${base}/map`));
  check('downloads: the Shapefile link downloads a zip',
    zip.ok && zip.headers.get('content-type') === 'application/zip', `${shp.href}: ${zip.status} ${zip.headers.get('content-type')}`);
}

async function axe(page, label) {
  const violations = await wcagViolations(page);
  check(`${label}: axe-core finds no WCAG 2.1 AA violation`, violations.length === 0, violations.join('\n'));
}

async function screenshot(page, name) {
  const path = join(shots, `${name}.png`);
  const buf = await page.screenshot({ path });
  screenshots.push(path);
  return PNG.sync.read(buf);
}

async function desktop(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  watch(page, 'desktop');
  await openMap(page);
  check('page is ready after the first idle', true);

  const blocks = await rendered(page, ['blocks-fill']);
  check('block features are rendered', blocks > 0, `${blocks} rendered block features`);
  const title = await page.title();
  check('page has a title', /coverage map/i.test(title), title);
  const stats = await page.textContent('#stat-coverage');
  const summary = await (await fetch(`${base}/coverage`)).json();
  check('header shows the coverage percentage', stats.trim() === `${summary.coverage_pct.toFixed(1)}%`,
    `header "${stats.trim()}", /coverage ${summary.coverage_pct}`);
  const blocksStat = (await page.textContent('#stat-blocks')).replace(/,/g, '');
  check('header shows covered / total blocks', blocksStat.includes(`${summary.covered_blocks} / ${summary.blocks}`), blocksStat);
  await dashboard(page, 'desktop', 1280);

  // Covered and uncovered blocks are drawn in different colours.
  const pick = await pickBlocks(page);
  let png = await screenshot(page, 'desktop');
  if (check('a covered and an uncovered block are visible', pick.covered && pick.uncovered,
    `covered ${pick.covered?.id ?? 'none'}, uncovered ${pick.uncovered?.id ?? 'none'}`)) {
    const c = sample(png, pick.covered.x, pick.covered.y);
    const u = sample(png, pick.uncovered.x, pick.uncovered.y);
    check('covered and uncovered blocks differ in colour', dist(c, u) > 60,
      `covered rgb(${c}) at ${pick.covered.x.toFixed(0)},${pick.covered.y.toFixed(0)}; uncovered rgb(${u}) at ${pick.uncovered.x.toFixed(0)},${pick.uncovered.y.toFixed(0)}; distance ${dist(c, u).toFixed(0)}`);
    check('covered is drawn teal and uncovered orange', c[1] > c[0] && u[0] > u[1] && u[0] > u[2],
      `covered rgb(${c}), uncovered rgb(${u})`);
  }

  // Layer toggles change what is drawn.
  const dotsBefore = await rendered(page, ['resources-circle']);
  await page.getByRole('checkbox', { name: 'Community resources' }).uncheck();
  await waitIdle(page);
  const dotsAfter = await rendered(page, ['resources-circle']);
  check('unticking resources hides the resource points', dotsBefore > 0 && dotsAfter === 0,
    `${dotsBefore} points before, ${dotsAfter} after`);
  await page.getByRole('checkbox', { name: 'Community resources' }).check();
  await waitIdle(page);
  check('ticking resources shows them again', (await rendered(page, ['resources-circle'])) === dotsBefore);

  if (pick.uncovered) {
    const before = sample(png, pick.uncovered.x, pick.uncovered.y);
    await page.getByRole('checkbox', { name: 'Blocks: coverage' }).uncheck();
    await waitIdle(page);
    png = await screenshot(page, 'desktop-blocks-off');
    const after = sample(png, pick.uncovered.x, pick.uncovered.y);
    const left = await rendered(page, ['blocks-fill']);
    check('unticking blocks removes the block fill', left === 0 && dist(before, after) > 40,
      `${left} block features left; pixel rgb(${before}) -> rgb(${after})`);
    await page.getByRole('checkbox', { name: 'Blocks: coverage' }).check();
    await waitIdle(page);
  }

  await page.getByRole('checkbox', { name: 'School readiness' }).check();
  await waitIdle(page);
  const withValue = await rendered(page, ['readiness-fill']);
  const noData = await rendered(page, ['readiness-nodata']);
  check('school readiness shows values and hatched no-data blocks', withValue > 0 && noData > 0,
    `${withValue} blocks with a value, ${noData} without`);
  const legend = await page.locator('#legend-readiness li').count();
  check('school readiness has a legend with a no-data entry',
    legend >= 3 && (await page.textContent('#legend-readiness')).includes('No data'), `${legend} legend entries`);
  await screenshot(page, 'desktop-readiness');
  await page.getByRole('checkbox', { name: 'School readiness' }).uncheck();
  await waitIdle(page);

  // Access to resources: a category picker over the resource-access layer.
  const picker = page.getByLabel('Distance from each block to the nearest');
  const options = await picker.locator('option').allTextContents();
  check('the access layer offers every resource category', options.length >= 6 && options.some((o) => o.startsWith('Food bank')),
    options.join(' | '));
  await page.getByRole('checkbox', { name: 'Access to resources' }).check();
  await waitIdle(page);
  await picker.selectOption('food_bank');
  await waitIdle(page);
  const accessFeatures = () => page.evaluate(() => window.belongMap.queryRenderedFeatures({ layers: ['access-fill', 'access-none'] })
    .map((f) => f.properties));
  const shown = await accessFeatures();
  const measured = shown.filter((p) => typeof p.food_bank_nearest_m === 'number');
  check('the access layer draws the blocks with their distance to the nearest food bank',
    shown.length > 0 && measured.length > 0 && shown.every((p) => 'food_bank_access_score' in p && 'residents' in p),
    `${shown.length} drawn, ${measured.length} with a distance`);
  const paint = await page.evaluate(() => JSON.stringify(window.belongMap.getPaintProperty('access-fill', 'fill-color')));
  check('the access colours follow the chosen category', paint.includes('food_bank_nearest_m'), paint);
  await picker.selectOption('school');
  await waitIdle(page);
  const paintSchool = await page.evaluate(() => JSON.stringify(window.belongMap.getPaintProperty('access-fill', 'fill-color')));
  const legendAccess = await page.textContent('#legend-access');
  check('choosing another category recolours the layer and its legend',
    paintSchool.includes('school_nearest_m') && legendAccess.includes('No school at all'), `${paintSchool}; ${legendAccess}`);
  await screenshot(page, 'desktop-access');
  // The downloads panel stays open for the accessibility check.
  await downloads(page);
  await axe(page, 'desktop map with the access layer and the downloads open');
  await page.getByRole('checkbox', { name: 'Access to resources' }).uncheck();
  await waitIdle(page);

  // Coverage as of a day: the slider's first day is the one before anything was counted.
  const blockProps = () => page.evaluate(() => window.belongMap.queryRenderedFeatures({ layers: ['blocks-fill'] })
    .map((f) => f.properties));
  const slider = page.getByRole('slider', { name: /Coverage at the end of/ });
  check('the blocks have a date slider', await slider.isVisible());
  const coveredNow = (await blockProps()).filter((p) => p.covered === true || p.covered === 'true').length;
  const dated = page.waitForRequest((r) => /\/tiles\/blocks\/\d+\/\d+\/\d+\.mvt\?datetime=\d{4}-\d\d-\d\d$/.test(r.url()),
    { timeout: TIMEOUT });
  await slider.focus();
  await page.keyboard.press('Home');
  const request = await dated.then((r) => r.url(), () => null);
  check('moving the slider fetches the blocks\' tiles of that day', request !== null, request ?? 'no dated tile request');
  await page.waitForFunction(() => document.querySelector('#as-of-now') && !document.querySelector('#as-of-now').hidden,
    null, { timeout: TIMEOUT });
  await page.waitForTimeout(300);
  await waitIdle(page);
  const then = await blockProps();
  const label = await page.textContent('#as-of-label');
  check('before the first change no block was covered', then.length > 0 && coveredNow > 0
    && then.every((p) => p.covered === false || p.covered === 'false') && then.every((p) => Number(p.ambassadors) === 0),
    `${then.length} blocks drawn on ${label}; ${coveredNow} covered now`);
  check('the slider names the day', /\d{4}/.test(label) && label !== 'today', label);
  await screenshot(page, 'desktop-as-of');
  await axe(page, 'desktop map as of a day');
  await page.getByRole('button', { name: 'Back to today' }).click();
  await page.waitForTimeout(300);
  await waitIdle(page);
  const back = (await blockProps()).filter((p) => p.covered === true || p.covered === 'true').length;
  check('back to today shows the coverage now', back === coveredNow && (await page.textContent('#as-of-label')) === 'today',
    `${back} covered drawn, ${coveredNow} before`);

  // Clicking a block shows its details.
  if (pick.covered) {
    const again = await pickBlocks(page);
    const target = again.covered || again.uncovered;
    await page.mouse.click(target.x, target.y);
    await page.waitForSelector('#block-card:not([hidden])', { timeout: TIMEOUT });
    await page.waitForFunction((id) => document.getElementById('block-id').textContent.includes(id), target.id,
      { timeout: TIMEOUT });
    check('clicking a block shows its id', true, target.id);
    await page.waitForSelector('#block-resources .dist', { timeout: TIMEOUT }).catch(() => {});
    const nearest = await page.locator('#block-resources .dist').count();
    check('the block card lists the nearest resources with distances', nearest > 0, `${nearest} listed`);
    await waitIdle(page);
    await screenshot(page, 'desktop-block');
    await page.keyboard.press('Escape');
    check('Escape closes the block card', await page.locator('#block-card').isHidden());
  }

  // Clicking a resource point shows its name.
  const dot = await page.evaluate(() => {
    const map = window.belongMap;
    const canvas = map.getCanvas().getBoundingClientRect();
    const f = map.queryRenderedFeatures({ layers: ['resources-circle'] }).find((f) => {
      const p = map.project(f.geometry.coordinates);
      return p.x > 20 && p.y > 20 && p.x < canvas.width - 60 && p.y < canvas.height - 40;
    });
    if (!f) return null;
    const p = map.project(f.geometry.coordinates);
    return { name: f.properties.name, x: p.x + canvas.left, y: p.y + canvas.top };
  });
  if (check('a resource point is on screen', dot)) {
    await page.mouse.click(dot.x, dot.y);
    await page.waitForSelector('.maplibregl-popup', { timeout: TIMEOUT });
    const text = await page.textContent('.maplibregl-popup');
    check('clicking a resource shows its name', text.includes(dot.name), `popup "${text}", expected ${dot.name}`);
    await page.click('.maplibregl-popup-close-button');
  }

  // The recruiter panel lists the uncovered blocks, and Enter on a row flies to it.
  const uncovered = await (await fetch(`${base}/coverage/uncovered`)).json();
  const list = await page.evaluate(() => {
    const ol = document.getElementById('recruit-list');
    return {
      rows: ol.querySelectorAll('.recruit-row').length,
      total: Number(ol.dataset.total),
      shown: Number(ol.dataset.shown),
      first: ol.querySelector('.recruit-row')?.dataset.blockId,
    };
  });
  check('the recruiter panel lists the uncovered blocks',
    list.total === uncovered.length && list.rows === Math.min(uncovered.length, list.shown) && list.rows > 0
      && list.first === uncovered[0]?.block_id,
    `${list.rows} rows shown of ${list.total}; /coverage/uncovered has ${uncovered.length}; first ${list.first}`);
  if (uncovered.length > 0) {
    const id = uncovered[0].block_id;
    await page.locator('.recruit-row').first().focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction((id) => document.getElementById('block-id').textContent.includes(id), id,
      { timeout: TIMEOUT });
    await page.waitForFunction(() => !window.belongMap.isMoving(), null, { timeout: TIMEOUT });
    await waitIdle(page);
    const item = await (await fetch(`${base}/collections/blocks/items/${id}`)).json();
    const flown = await page.evaluate((id) => {
      const map = window.belongMap;
      const center = map.getCenter();
      const filter = JSON.stringify(map.getFilter('blocks-selected'));
      return { center: [center.lng, center.lat], zoom: map.getZoom(), highlighted: filter.includes(id) };
    }, id);
    const bbox = item.bbox || (() => {
      const xs = []; const ys = [];
      const walk = (c) => (typeof c[0] === 'number' ? (xs.push(c[0]), ys.push(c[1])) : c.forEach(walk));
      walk(item.geometry.coordinates);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    })();
    const span = Math.max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * 3;
    const near = Math.abs(flown.center[0] - (bbox[0] + bbox[2]) / 2) < span
      && Math.abs(flown.center[1] - (bbox[1] + bbox[3]) / 2) < span;
    check('Enter on the top row flies to and highlights that block', near && flown.highlighted && flown.zoom >= 15,
      `zoom ${flown.zoom.toFixed(1)}, centre ${flown.center.map((v) => v.toFixed(5))}, highlighted ${flown.highlighted}`);
    await screenshot(page, 'desktop-recruit');
    if (token) await liveUpdate(page, id, bbox);
  }

  await rollupInteractions(page);
  await trendKeyboard(page);

  // The landing page links to the map.
  const landing = await context.newPage();
  watch(landing, 'landing');
  await landing.goto(`${base}/`, { timeout: TIMEOUT });
  check('the landing page (text/html) links to the map', (await landing.locator('a[href$="/map"]').count()) > 0);
  await context.close();
}

/**
 * With a manager token: an ambassador adopts the uncovered block `id` through the API, and
 * after a refresh the page shows one more covered block, drops the block from the recruiting
 * list and redraws it as covered. The ambassador is deleted again afterwards.
 */
async function liveUpdate(page, id, bbox) {
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const covered = () => page.evaluate((id) => {
    const f = window.belongMap.queryRenderedFeatures({ layers: ['blocks-fill'], filter: ['==', ['get', 'block_id'], id] });
    return f.length ? f[0].properties.covered : null;
  }, id);
  const before = (await (await fetch(`${base}/coverage`)).json()).covered_blocks;
  const wasCovered = await covered();
  const res = await fetch(`${base}/people`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      role: 'ambassador', lon: (bbox[0] + bbox[2]) / 2, lat: (bbox[1] + bbox[3]) / 2, block_id: id,
      name: 'Map Test Ambassador',
    }),
  });
  if (!check('live update: an ambassador adopts the block through the API', res.status === 201, `POST /people: ${res.status}`)) return;
  const person = await res.json();
  try {
    await page.click('#refresh');
    await page.waitForFunction((n) => document.getElementById('stat-blocks').textContent.replace(/,/g, '').startsWith(`${n} /`),
      before + 1, { timeout: TIMEOUT });
    await page.waitForFunction((id) => !document.querySelector(`.recruit-row[data-block-id="${id}"]`), id, { timeout: TIMEOUT });
    const deadline = Date.now() + TIMEOUT;
    let now = await covered();
    while (now !== true && Date.now() < deadline) {
      await waitIdle(page);
      now = await covered();
    }
    await page.waitForFunction(() => document.getElementById('block-status').textContent.startsWith('Covered'), null,
      { timeout: TIMEOUT }).catch(() => {});
    const pill = await page.textContent('#block-status');
    check('live update: after a refresh the header, the list, the card and the block colour follow',
      wasCovered === false && now === true && pill.startsWith('Covered'),
      `covered before ${wasCovered}, after ${now}; covered blocks ${before} -> ${before + 1}; card "${pill}"`);
    // The trend chart's latest value and the tract's row of the roll-up follow too.
    const summary = await getJson('/coverage');
    const tract = id.slice(0, 11);
    const row = (await getJson('/coverage/rollup?by=tract')).find((r) => r.group === tract);
    await page.waitForFunction(([latest, tract, blocks]) => document.querySelector('#trend-chart .trend-latest')?.textContent === latest
      && document.querySelector(`#rollup-table tr[data-group="${tract}"] .rollup-pct .rollup-sub`)?.textContent === blocks,
    [pct(summary.coverage_pct), tract, `${count(row?.covered_blocks)} of ${count(row?.blocks)}`], { timeout: TIMEOUT }).catch(() => {});
    const shown = await page.evaluate((tract) => ({
      latest: document.querySelector('#trend-chart .trend-latest')?.textContent,
      blocks: document.querySelector(`#rollup-table tr[data-group="${tract}"] .rollup-pct .rollup-sub`)?.textContent,
    }), tract);
    check('live update: the trend chart and the roll-up follow', shown.latest === pct(summary.coverage_pct)
      && shown.blocks === `${count(row?.covered_blocks)} of ${count(row?.blocks)}`,
      `chart "${shown.latest}", /coverage ${summary.coverage_pct}; tract ${tract} "${shown.blocks}", API ${row?.covered_blocks} of ${row?.blocks}`);
    await screenshot(page, 'desktop-live-update');
  } finally {
    await fetch(`${base}/people/${encodeURIComponent(person.id)}`, { method: 'DELETE', headers });
  }
}

async function phone(browser) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true,
  });
  const page = await context.newPage();
  watch(page, 'phone');
  await openMap(page);
  const layout = await page.evaluate(() => {
    const box = (sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return { top: r.top, left: r.left, width: r.width, height: r.height };
    };
    return {
      map: box('#map'),
      recruit: box('#recruit'),
      stats: box('#stats'),
      scrollWidth: document.documentElement.scrollWidth,
      rows: document.querySelectorAll('.recruit-row').length,
    };
  });
  check('phone: the map is visible and full width', layout.map.width >= 380 && layout.map.height >= 300
    && layout.map.top < 844, JSON.stringify(layout.map));
  check('phone: no horizontal scrolling', layout.scrollWidth <= 390, `scroll width ${layout.scrollWidth}`);
  check('phone: header numbers are visible', layout.stats.width > 0 && layout.stats.top < layout.map.top,
    JSON.stringify(layout.stats));
  check('phone: blocks are rendered', (await rendered(page, ['blocks-fill'])) > 0);
  await screenshot(page, 'phone');
  await dashboard(page, 'phone', 390);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check('phone: no horizontal scrolling with the chart and the roll-up drawn', wide <= 390, `scroll width ${wide}`);
  await page.locator('#trend').scrollIntoViewIfNeeded();
  await screenshot(page, 'phone-trend');
  await page.locator('#rollup').scrollIntoViewIfNeeded();
  await screenshot(page, 'phone-rollup');
  await page.locator('#recruit').scrollIntoViewIfNeeded();
  const visible = await page.locator('#recruit .recruit-row').first().isVisible();
  check('phone: the recruiting panel is below the map and shows rows', visible && layout.recruit.top >= layout.map.top
    + layout.map.height - 1 && layout.rows > 0, `${layout.rows} rows, panel top ${layout.recruit.top}`);
  await screenshot(page, 'phone-recruit');
  // Choosing a row brings the map back into view with the block's card over it.
  const firstId = await page.locator('#recruit .recruit-row').first().getAttribute('data-block-id');
  await page.locator('#recruit .recruit-row').first().tap();
  await page.waitForSelector('#block-card:not([hidden])', { timeout: TIMEOUT });
  await page.waitForFunction(() => !window.belongMap.isMoving()
    && Math.abs(document.getElementById('map').getBoundingClientRect().top) < 5, null, { timeout: TIMEOUT });
  await waitIdle(page);
  const card = await page.evaluate(() => {
    const r = document.getElementById('block-id').getBoundingClientRect();
    const m = document.getElementById('map').getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, mapTop: m.top, mapBottom: m.bottom,
      text: document.getElementById('block-id').textContent };
  });
  check('phone: choosing a row shows the map and the block card on screen', card.top >= 0 && card.bottom <= 844
    && card.left >= 0 && card.right <= 390 && card.mapTop > -5 && card.text.includes(firstId), JSON.stringify(card));
  await screenshot(page, 'phone-block');
  await context.close();
}

async function main() {
  let browser;
  try {
    // Playwright gives every launch a new temporary profile (user-data-dir) and removes it.
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-sandbox', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      ],
    });
  } catch (e) {
    console.log(JSON.stringify({ ok: false, base, error: `cannot start Chromium at ${executablePath}: ${e.message}` }));
    process.exit(2);
  }
  try {
    for (const run of [desktop, phone, trendShapes]) {
      try {
        await run(browser);
      } catch (e) {
        check(`${run.name} run completed`, false, e.stack || String(e));
      }
    }
  } finally {
    await browser.close();
  }
  report();
}

/** Print the summary and exit: 0 when every check passed. */
function report() {
  check('no console errors or warnings, page errors or failed requests', problems.length === 0, problems.join('\n'));
  const failed = checks.filter((c) => !c.ok);
  const summary = { ok: failed.length === 0, base, passed: checks.length - failed.length, failed: failed.length, checks, screenshots };
  console.log(JSON.stringify(summary, null, 2));
  console.log(`${checks.length - failed.length} passed, ${failed.length} failed`);
  for (const f of failed) console.error(`FAILED: ${f.name}${f.detail ? `\n  ${f.detail.replace(/\n/g, '\n  ')}` : ''}`);
  process.exit(failed.length ? 1 : 0);
}

// A stuck browser must not hang the caller: report what was checked so far and fail.
setTimeout(() => {
  check('finished within the time limit', false, `still running after ${WATCHDOG / 1000} s`);
  report();
}, WATCHDOG).unref();

await main();
