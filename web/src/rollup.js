// The roll-up table: coverage per census tract or per area of an imported layer, from
// `/coverage/rollup?by=...` (rows sorted by group; blocks in no tract or area in a last row whose
// group is null). Sortable by name, coverage % and residents in uncovered blocks; a tract can be
// chosen to outline its blocks on the map.

import { el, num, pct, plural } from './dom.js';

/** A grouping's name for people: `Census tract`, `Council districts (14)`. */
export function groupingLabel(g) {
  if (g.kind === 'tract' || g.name === 'tract') return 'Census tract';
  const name = String(g.name).replace(/[-_]+/g, ' ').replace(/^./, (c) => c.toUpperCase());
  return Number.isFinite(g.areas) ? `${name} (${num.format(g.areas)})` : name;
}

/** `Tract 2091.02` for the tract `06037209102` (state, county, 6-digit tract code). */
export function tractName(id) {
  const code = String(id).slice(5);
  if (!/^\d{6}$/.test(code)) return `Tract ${id}`;
  const whole = String(Number(code.slice(0, 4)));
  const part = code.slice(4);
  return `Tract ${whole}${part === '00' ? '' : `.${part}`}`;
}

/** Rows drawn at first; a catchment of 100,000 blocks has thousands of tracts. */
const PAGE = 100;

const SORTS = {
  name: { label: 'name', first: 'ascending' },
  coverage: { label: 'coverage', first: 'ascending' },
  uncovered: { label: 'residents in uncovered blocks', first: 'descending' },
};

function compare(key) {
  const byName = (a, b) => String(a.group).localeCompare(String(b.group), 'en', { numeric: true });
  if (key === 'coverage') return (a, b) => a.coverage_pct - b.coverage_pct || b.residents_in_uncovered_blocks - a.residents_in_uncovered_blocks || byName(a, b);
  if (key === 'uncovered') return (a, b) => a.residents_in_uncovered_blocks - b.residents_in_uncovered_blocks || b.coverage_pct - a.coverage_pct || byName(a, b);
  return (a, b) => String(a.name ?? a.group).localeCompare(String(b.name ?? b.group), 'en', { numeric: true }) || byName(a, b);
}

export class RollupTable {
  /**
   * @param {HTMLTableElement} table  with a `thead` whose buttons carry `data-sort`
   * @param {object} opts  `more` (a "show more" button), `onSelect(group | null)` (a tract
   *   chosen or cleared)
   */
  constructor(table, { more, onSelect }) {
    this.table = table;
    this.more = more;
    this.onSelect = onSelect;
    this.limit = PAGE;
    more.addEventListener('click', () => {
      const first = this.limit;
      this.limit += PAGE;
      this.render();
      // Continue where the table was: on the first row just added.
      this.table.tBodies[0].rows[first]?.querySelector('button')?.focus();
    });
    this.rows = [];
    this.by = 'tract';
    this.label = 'Census tract';
    this.sort = { key: 'name', dir: 'ascending' };
    this.selected = null;
    for (const button of table.querySelectorAll('thead button[data-sort]')) {
      button.addEventListener('click', () => {
        const key = button.dataset.sort;
        const dir = this.sort.key === key
          ? (this.sort.dir === 'ascending' ? 'descending' : 'ascending')
          : SORTS[key].first;
        this.sort = { key, dir };
        this.render();
      });
    }
  }

  update(rows, by, label) {
    this.rows = Array.isArray(rows) ? rows : [];
    if (by !== this.by) {
      this.selected = null;
      this.limit = PAGE;
    }
    this.by = by;
    this.label = label;
    if (this.selected && !this.rows.some((r) => r.group === this.selected)) this.select(null);
    this.render();
  }

  select(group) {
    this.selected = group;
    this.onSelect?.(group);
    for (const b of this.table.querySelectorAll('tbody .rollup-name')) {
      const on = b.dataset.group === group;
      b.setAttribute('aria-pressed', String(on));
      b.closest('tr').classList.toggle('selected', on);
    }
  }

  render() {
    const tract = this.by === 'tract';
    const { key, dir } = this.sort;
    const grouped = this.rows.filter((r) => r.group !== null && r.group !== undefined);
    const rest = this.rows.filter((r) => r.group === null || r.group === undefined);
    const order = compare(key);
    grouped.sort((a, b) => (dir === 'ascending' ? order(a, b) : order(b, a)));

    for (const th of this.table.querySelectorAll('thead th')) {
      const button = th.querySelector('button[data-sort]');
      if (!button) continue;
      if (button.dataset.sort === key) th.setAttribute('aria-sort', dir);
      else th.removeAttribute('aria-sort');
      if (button.dataset.sort === 'name') button.querySelector('.th-label').textContent = tract ? 'Tract' : 'Area';
    }
    const units = tract ? ['tract', 'tracts'] : ['area', 'areas'];
    this.table.querySelector('caption').textContent = `Coverage by ${this.label.replace(/ \(\d+\)$/, '').toLowerCase()}: `
      + `${plural(grouped.length, ...units)}, sorted by ${SORTS[key].label}, `
      + `${dir === 'ascending' ? (key === 'name' ? 'A to Z' : 'lowest first') : (key === 'name' ? 'Z to A' : 'highest first')}.`;

    // Keep the keyboard focus on the same row across a redraw.
    const focused = document.activeElement?.closest?.('.rollup-name')?.dataset.group;
    const tbody = this.table.tBodies[0];
    const shown = grouped.slice(0, this.limit);
    tbody.replaceChildren(...shown.map((r) => this.row(r, tract)), ...rest.map((r) => this.row(r, tract)));
    this.more.hidden = shown.length >= grouped.length;
    this.more.textContent = `Show ${num.format(Math.min(PAGE, grouped.length - shown.length))} more`;
    if (!this.rows.length) {
      tbody.append(el('tr', {}, el('td', { colspan: '3', class: 'empty' }, 'No blocks loaded yet.')));
    }
    if (focused) tbody.querySelector(`.rollup-name[data-group="${CSS.escape(focused)}"]`)?.focus();

    const sum = (f) => this.rows.reduce((s, r) => s + (Number(r[f]) || 0), 0);
    const [blocks, covered, residents, uncovered] = ['blocks', 'covered_blocks', 'residents', 'residents_in_uncovered_blocks'].map(sum);
    this.table.tFoot.replaceChildren(this.rows.length ? el(
      'tr', {},
      el('th', { scope: 'row' }, el('span', { class: 'rollup-title' }, 'All blocks')),
      this.coverageCell(blocks ? (100 * covered) / blocks : 0, covered, blocks),
      this.uncoveredCell(uncovered, residents),
    ) : '');
  }

  row(r, tract) {
    const none = r.group === null || r.group === undefined;
    const title = none ? (tract ? 'No tract' : 'In no area') : (tract ? tractName(r.group) : (r.name || r.group));
    let head;
    if (tract && !none) {
      // A tract can be outlined on the map: its blocks are those whose id starts with it.
      const button = el(
        'button',
        {
          type: 'button', class: 'rollup-name', dataset: { group: r.group },
          'aria-pressed': String(this.selected === r.group), title: `Outline ${title} on the map`,
        },
        // The column says "Tract": the number alone is shown, the whole name is read.
        el('span', { class: 'rollup-title' }, el('span', { class: 'sr-only' }, 'Tract '), title.replace(/^Tract /, '')),
        el('span', { class: 'rollup-sub mono' }, r.group),
      );
      button.addEventListener('click', () => this.select(this.selected === r.group ? null : r.group));
      head = button;
    } else {
      head = [
        el('span', { class: 'rollup-title' }, title),
        none || !r.name ? null : el('span', { class: 'rollup-sub mono' }, r.group),
      ];
    }
    const tr = el(
      'tr',
      { class: [none ? 'rollup-none' : '', this.selected === r.group && !none ? 'selected' : ''].join(' ').trim() || null,
        dataset: { group: none ? '' : r.group } },
      el('th', { scope: 'row' }, ...[head].flat()),
      this.coverageCell(r.coverage_pct, r.covered_blocks, r.blocks),
      this.uncoveredCell(r.residents_in_uncovered_blocks, r.residents),
    );
    return tr;
  }

  coverageCell(value, covered, blocks) {
    const v = Math.max(0, Math.min(100, Number(value) || 0));
    return el(
      'td', { class: 'rollup-pct', dataset: { value: String(value) } },
      el('span', { class: 'rollup-value' }, pct(value)),
      el('span', { class: 'meter', 'aria-hidden': 'true' }, el('span', { style: `width:${v}%` })),
      el('span', { class: 'rollup-sub', title: 'covered blocks of all blocks' }, `${num.format(covered)} of ${num.format(blocks)}`),
    );
  }

  uncoveredCell(uncovered, residents) {
    return el(
      'td', { class: 'rollup-uncovered', dataset: { value: String(uncovered) } },
      el('span', { class: 'rollup-value' }, num.format(uncovered)),
      el('span', { class: 'rollup-sub' }, `of ${num.format(residents)}`),
    );
  }
}
