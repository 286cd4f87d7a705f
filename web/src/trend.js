// The "move the dot" chart: coverage % over time, from the rows of `/coverage/history` (one per
// day or ISO week, oldest first, without gaps; the last one is the state now). Plain SVG drawn
// here, no chart library. Screen readers get a summary (aria-label) and a visually hidden table
// of every point; keyboard users can focus the chart and step through the points with the arrow
// keys; a pointer (mouse or finger) shows the nearest point.

import { el, num, pct, plural, svgEl } from './dom.js';

const HEIGHT = 150;
const PAD = { top: 14, right: 14, bottom: 24, left: 38 };

const shortDate = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
const longDate = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', year: 'numeric', timeZone: 'UTC' });

/** `2026-11-23` as a UTC date. */
function parseDate(s) {
  const [y, m, d] = String(s).split('-').map(Number);
  return new Date(Date.UTC(y, (m || 1) - 1, d || 1));
}

/** How a point is named: `Nov 23, 2026`, or `week of Nov 16, 2026`. */
function pointLabel(row, interval, { long = true } = {}) {
  const date = (long ? longDate : shortDate).format(parseDate(row.date));
  return interval === 'week' ? `week of ${date}` : date;
}

/** The top of the y axis and the step between its labels, for values up to `max` %. */
function yScale(max) {
  const top = Math.max(max, 1);
  const step = [1, 2, 5, 10, 20, 25, 50].find((s) => top / s <= 4) || 50;
  // A little room above the highest point, up to 100 %.
  return { yMax: Math.min(100, Math.ceil((top * 1.06) / step) * step), step };
}

const signed = (v) => `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(1)}`;

/** The change over the last week (daily points) or four weeks (weekly points), in words. */
function changeText(rows, interval) {
  if (!rows.length) return { text: 'No history yet: it starts with the first import.', trend: 'none' };
  const last = rows[rows.length - 1];
  if (rows.length === 1) {
    return {
      text: `Tracking since ${longDate.format(parseDate(last.date))}.`,
      trend: 'none',
    };
  }
  const span = interval === 'week' ? 4 : 7;
  const back = rows.length > span ? rows[rows.length - 1 - span] : rows[0];
  const since = rows.length > span
    ? `in the last ${span} ${interval}s`
    : `since ${pointLabel(rows[0], interval, { long: false })}`;
  const delta = Math.round((last.coverage_pct - back.coverage_pct) * 10) / 10;
  if (delta === 0) return { text: `No change ${since}.`, trend: 'flat' };
  return {
    text: `${signed(delta)} points ${since}`,
    trend: delta > 0 ? 'up' : 'down',
  };
}

export class TrendChart {
  /**
   * @param {HTMLElement} figure  where the SVG goes (position: relative); it also gets the tooltip
   * @param {object} parts  `change` (the change line), `table` (the hidden table), `live` (a
   *   polite live region for the point read by keyboard)
   */
  constructor(figure, { change, table, live }) {
    this.figure = figure;
    this.change = change;
    this.table = table;
    this.live = live;
    this.rows = [];
    this.interval = 'day';
    this.active = -1;
    this.width = 0;
    this.tip = el('div', { class: 'trend-tip', 'aria-hidden': 'true', hidden: true });
    this.observer = new ResizeObserver(() => {
      const width = Math.round(this.figure.clientWidth);
      if (width && width !== this.width) this.draw();
    });
    this.observer.observe(this.figure);
  }

  /** New data: redraw everything (keeping the point read by keyboard, if any). */
  update(rows, interval) {
    const keep = this.active >= 0 && this.active === this.rows.length - 1 ? 'last' : this.active;
    this.rows = Array.isArray(rows) ? rows : [];
    this.interval = interval;
    this.figure.dataset.interval = interval;
    this.figure.dataset.points = String(this.rows.length);
    if (keep === 'last') this.active = this.rows.length - 1;
    else if (this.active >= this.rows.length) this.active = -1;
    const { text, trend } = changeText(this.rows, interval);
    this.change.textContent = text;
    this.change.dataset.trend = trend;
    this.renderTable();
    this.draw();
  }

  /** Show an error instead of the chart (the previous chart stays, marked stale). */
  error(message) {
    this.change.textContent = message;
    this.change.dataset.trend = 'error';
  }

  renderTable() {
    const unit = this.interval === 'week' ? 'Week of' : 'Date';
    this.table.replaceChildren(
      el('caption', {}, `Coverage over time, one row per ${this.interval}, oldest first`),
      el('thead', {}, el('tr', {}, ...[unit, 'Coverage', 'Covered blocks', 'Ambassadors', 'Residents']
        .map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...this.rows.map((r) => el(
        'tr', {},
        el('th', { scope: 'row' }, longDate.format(parseDate(r.date))),
        el('td', {}, pct(r.coverage_pct)),
        el('td', {}, `${num.format(r.covered_blocks)} of ${num.format(r.blocks)}`),
        el('td', {}, num.format(r.ambassadors)),
        el('td', {}, num.format(r.residents)),
      ))),
    );
  }

  /** Where each point goes, in SVG user units (= CSS pixels). */
  layout() {
    const width = Math.max(200, Math.round(this.figure.clientWidth) || 300);
    const plot = { left: PAD.left, right: width - PAD.right, top: PAD.top, bottom: HEIGHT - PAD.bottom };
    const max = this.rows.reduce((m, r) => Math.max(m, Number(r.coverage_pct) || 0), 0);
    const { yMax, step } = yScale(max);
    const n = this.rows.length;
    // One point sits at the right edge, where "now" is with more points.
    const x = (i) => (n === 1 ? plot.right : plot.left + ((plot.right - plot.left) * i) / (n - 1));
    const y = (v) => plot.bottom - ((plot.bottom - plot.top) * Math.max(0, Math.min(yMax, v))) / yMax;
    const points = this.rows.map((r, i) => [x(i), y(Number(r.coverage_pct) || 0)]);
    return { width, plot, yMax, step, points };
  }

  draw() {
    const { width, plot, yMax, step, points } = this.layout();
    this.width = width;
    this.points = points;
    const rows = this.rows;
    const n = rows.length;
    const last = rows[n - 1];
    const r1 = (v) => Math.round(v * 10) / 10;

    const grid = [];
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      const yy = r1(plot.bottom - ((plot.bottom - plot.top) * v) / yMax);
      grid.push(
        svgEl('line', { class: v === 0 ? 'trend-axis' : 'trend-grid', x1: plot.left, x2: plot.right, y1: yy, y2: yy }),
        svgEl('text', { class: 'trend-ylabel', x: plot.left - 6, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' },
          `${v}%`),
      );
    }

    // The first and the last date; with their years when the chart spans more than one.
    const labels = [];
    if (n >= 1) {
      const first = parseDate(rows[0].date);
      const end = parseDate(last.date);
      const format = first.getUTCFullYear() === end.getUTCFullYear() ? shortDate : longDate;
      labels.push(svgEl('text', { class: 'trend-xlabel', x: plot.right, y: HEIGHT - 6, 'text-anchor': 'end' },
        this.interval === 'week' && n > 1 ? 'now' : format.format(end)));
      if (n > 1) {
        labels.push(svgEl('text', { class: 'trend-xlabel', x: plot.left, y: HEIGHT - 6, 'text-anchor': 'start' },
          format.format(first)));
      }
    }

    const line = points.map(([px, py], i) => `${i ? 'L' : 'M'}${r1(px)},${r1(py)}`).join(' ');
    const area = n > 1 ? `${line} L${r1(points[n - 1][0])},${plot.bottom} L${r1(points[0][0])},${plot.bottom} Z` : '';

    const marks = [];
    if (n) {
      const [lx, ly] = points[n - 1];
      // The latest value: above the dot, or below it when the dot is near the top.
      const above = ly - plot.top > 18;
      marks.push(
        svgEl('circle', { class: 'trend-dot', cx: r1(lx), cy: r1(ly), r: 4.5 }),
        svgEl('text', {
          class: 'trend-latest', x: r1(lx - 2), y: r1(above ? ly - 9 : ly + 17), 'text-anchor': 'end',
        }, pct(last.coverage_pct)),
      );
    }
    if (n === 1) {
      marks.push(svgEl('text', {
        class: 'trend-note', x: r1((plot.left + plot.right) / 2 - 10), y: r1((plot.top + plot.bottom) / 2), 'text-anchor': 'middle',
      }, `The line grows a ${this.interval} at a time`));
    } else if (!n) {
      marks.push(svgEl('text', {
        class: 'trend-note', x: r1((plot.left + plot.right) / 2), y: r1((plot.top + plot.bottom) / 2), 'text-anchor': 'middle',
      }, 'No history yet'));
    }

    this.guide = svgEl('line', { class: 'trend-guide', y1: plot.top, y2: plot.bottom, visibility: 'hidden' });
    this.focusDot = svgEl('circle', { class: 'trend-focus', r: 5, visibility: 'hidden' });
    const svg = svgEl(
      'svg',
      {
        class: 'trend-svg', width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
        role: 'img', tabindex: n ? '0' : null, 'aria-label': this.summary(),
        'aria-describedby': n ? 'trend-keys' : null,
      },
      ...grid,
      area ? svgEl('path', { class: 'trend-area', d: area }) : null,
      svgEl('path', { class: 'trend-line', d: line || 'M0,0', 'data-points': String(n), visibility: n ? null : 'hidden' }),
      ...labels,
      this.guide,
      ...marks,
      this.focusDot,
    );
    this.svg = svg;
    this.wire(svg);
    this.figure.replaceChildren(svg, this.tip);
    if (this.active >= 0 && this.active < n) this.show(this.active, { announce: false });
    else this.hide();
  }

  /** One sentence for screen readers: range, first and latest values. */
  summary() {
    const rows = this.rows;
    if (!rows.length) return 'Coverage over time: no history yet.';
    const last = rows[rows.length - 1];
    const per = this.interval === 'week' ? 'weekly' : 'daily';
    if (rows.length === 1) {
      return `Coverage over time: ${pct(last.coverage_pct)} on ${pointLabel(last, this.interval)}, the only point so far.`;
    }
    const first = rows[0];
    return `Coverage over time, ${per}, ${plural(rows.length, 'point')}: from ${pct(first.coverage_pct)} `
      + `${this.interval === 'week' ? 'in the ' : 'on '}${pointLabel(first, this.interval)} to ${pct(last.coverage_pct)} now `
      + `(${num.format(last.covered_blocks)} of ${num.format(last.blocks)} blocks covered).`;
  }

  wire(svg) {
    const nearest = (clientX) => {
      const box = svg.getBoundingClientRect();
      const x = clientX - box.left;
      let best = 0;
      for (let i = 1; i < this.points.length; i++) {
        if (Math.abs(this.points[i][0] - x) < Math.abs(this.points[best][0] - x)) best = i;
      }
      return best;
    };
    svg.addEventListener('pointermove', (e) => {
      if (this.points.length) this.show(nearest(e.clientX), { announce: false });
    });
    svg.addEventListener('pointerdown', (e) => {
      if (this.points.length) this.show(nearest(e.clientX), { announce: false });
    });
    svg.addEventListener('pointerleave', (e) => {
      // A finger lifting leaves the point shown; a mouse leaving hides it.
      if (e.pointerType === 'mouse' && document.activeElement !== svg) this.hide();
    });
    svg.addEventListener('focus', () => {
      if (this.points.length) this.show(this.active >= 0 ? this.active : this.points.length - 1);
    });
    svg.addEventListener('blur', () => this.hide());
    svg.addEventListener('keydown', (e) => {
      const n = this.points.length;
      if (!n) return;
      const page = this.interval === 'week' ? 4 : 7;
      const at = this.active >= 0 ? this.active : n - 1;
      const to = {
        ArrowLeft: at - 1, ArrowDown: at - 1, ArrowRight: at + 1, ArrowUp: at + 1,
        PageUp: at - page, PageDown: at + page, Home: 0, End: n - 1,
      }[e.key];
      if (e.key === 'Escape') {
        this.hide();
        return;
      }
      if (to === undefined) return;
      e.preventDefault();
      this.show(Math.max(0, Math.min(n - 1, to)));
    });
  }

  /** Show point `i`: guide line, ring and tooltip; `announce` also says it to screen readers. */
  show(i, { announce = true } = {}) {
    const row = this.rows[i];
    const p = this.points?.[i];
    if (!row || !p) return;
    this.active = i;
    const [x, y] = p;
    this.guide.setAttribute('x1', x);
    this.guide.setAttribute('x2', x);
    this.guide.setAttribute('visibility', 'visible');
    this.focusDot.setAttribute('cx', x);
    this.focusDot.setAttribute('cy', y);
    this.focusDot.setAttribute('visibility', 'visible');
    const isLast = i === this.rows.length - 1;
    const when = pointLabel(row, this.interval);
    this.tip.replaceChildren(
      el('strong', {}, `${when[0].toUpperCase()}${when.slice(1)}${isLast ? ' (now)' : ''}`),
      el('span', { class: 'trend-tip-value' }, pct(row.coverage_pct)),
      el('span', {}, `${num.format(row.covered_blocks)} of ${num.format(row.blocks)} blocks · ${plural(row.ambassadors, 'ambassador')}`),
    );
    this.tip.hidden = false;
    this.tip.dataset.index = String(i);
    // The tooltip says the value: the latest value's label would only be in its way.
    this.figure.classList.add('reading');
    // Beside the point, on the side with more room, so the line near it stays visible.
    const [w, h] = [this.tip.offsetWidth, this.tip.offsetHeight];
    const left = x > this.width / 2 ? x - w - 12 : x + 12;
    this.tip.style.left = `${Math.max(0, Math.min(this.width - w, left))}px`;
    this.tip.style.top = `${Math.max(0, Math.min(HEIGHT - PAD.bottom - h, y - h / 2))}px`;
    if (announce) {
      this.live.textContent = `${when}: ${pct(row.coverage_pct)}, ${num.format(row.covered_blocks)} of `
        + `${num.format(row.blocks)} blocks covered, ${plural(row.ambassadors, 'ambassador')}.`;
    }
  }

  hide() {
    this.active = -1;
    this.tip.hidden = true;
    this.figure.classList.remove('reading');
    this.guide?.setAttribute('visibility', 'hidden');
    this.focusDot?.setAttribute('visibility', 'hidden');
  }
}
