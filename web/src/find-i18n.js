// The finder page's languages. Every string is in `find-strings.json` (the server fills the
// page's static strings in from the same file, in the language it picked); this module picks
// the language on the client (`?lang=` wins over what the server chose), swaps the static
// strings when the reader switches language, and formats numbers and distances per locale.

export const LANGS = ['en', 'es'];
const LOCALES = { en: 'en-US', es: 'es-US' };

let dictionary = null;
let current = 'en';

/** The language asked for in the URL, if it is one the page has. */
export function langFromUrl(search = window.location.search) {
  const asked = new URLSearchParams(search).get('lang');
  const primary = asked?.toLowerCase().split('-')[0];
  return LANGS.includes(primary) ? primary : null;
}

/**
 * The page's language: `?lang=`, else what the server put on `<html lang>` (from the
 * browser's Accept-Language), else the browser's languages.
 */
export function initialLang() {
  const fromUrl = langFromUrl();
  if (fromUrl) return fromUrl;
  const fromHtml = document.documentElement.lang?.toLowerCase().split('-')[0];
  if (LANGS.includes(fromHtml)) return fromHtml;
  for (const l of navigator.languages || []) {
    const primary = l.toLowerCase().split('-')[0];
    if (LANGS.includes(primary)) return primary;
  }
  return 'en';
}

export async function loadStrings(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  dictionary = await res.json();
}

export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : 'en';
}

export function lang() {
  return current;
}

export function locale() {
  return LOCALES[current];
}

/** The string `key` in the current language, with `{name}` placeholders filled in. */
export function t(key, params = {}) {
  const text = dictionary?.[current]?.[key] ?? dictionary?.en?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** `t('x', {n})` or `t('x_one')` by count (both languages have only "one" and "other"). */
export function tn(key, n, params = {}) {
  return t(n === 1 && dictionary?.[current]?.[`${key}_one`] ? `${key}_one` : key, { n: formatCount(n), ...params });
}

/** MapLibre's own UI strings (control labels) in the current language. */
export function mapLibreLocale() {
  return { ...(dictionary?.[current]?.maplibre || {}) };
}

/** A category's name for a chip (plural) or a list item (one): known ones translated, others as imported. */
export function categoryName(category, { one = false } = {}) {
  const table = dictionary?.[current]?.[one ? 'cat_one' : 'cat'] || {};
  if (table[category]) return table[category];
  if (!category) return '–';
  return category.replace(/_/g, ' ').replace(/^./, (s) => s.toUpperCase());
}

export function formatCount(n) {
  return new Intl.NumberFormat(locale()).format(n);
}

/** Metres to a short distance: tens of metres below 1 km, then km with one decimal (10 km up: whole). */
export function formatDistance(m) {
  if (!Number.isFinite(m)) return '–';
  if (m < 995) {
    return new Intl.NumberFormat(locale(), { style: 'unit', unit: 'meter', maximumFractionDigits: 0 })
      .format(Math.max(10, Math.round(m / 10) * 10));
  }
  const km = m / 1000;
  return new Intl.NumberFormat(locale(), {
    style: 'unit', unit: 'kilometer', maximumFractionDigits: km < 9.95 ? 1 : 0, minimumFractionDigits: km < 9.95 ? 1 : 0,
  }).format(km);
}

export function formatDate(date) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/** A list of names joined the locale's way ("a, b and c" / "a, b y c"). */
export function formatList(items) {
  return new Intl.ListFormat(locale(), { style: 'long', type: 'conjunction' }).format(items);
}

/**
 * Put the current language's strings into the page: `data-i18n` (text), and
 * `data-i18n-attr="attr:key attr:key"` (attributes such as aria-label, title, content).
 */
export function translatePage(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(/\s+/).filter(Boolean)) {
      const [attr, key] = pair.split(':');
      node.setAttribute(attr, t(key));
    }
  }
}
