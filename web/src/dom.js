// Small DOM helpers shared by the map page's modules.

export const $ = (id) => document.getElementById(id);

export const num = new Intl.NumberFormat('en-US');

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'style') node.style.cssText = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** An HTML element with attributes and children (strings or nodes; null is skipped). */
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function svgEl(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function plural(n, one, many = `${one}s`) {
  return `${num.format(n)} ${n === 1 ? one : many}`;
}

/** `12.3%`: percentages are shown with one decimal everywhere on the page. */
export function pct(value) {
  return `${(Number(value) || 0).toFixed(1)}%`;
}
