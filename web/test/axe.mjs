// axe-core's WCAG 2.1 A and AA rules, run in a page: shared by the browser tests of /map and
// /find (web/test/map.mjs, find.mjs).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The WCAG 2.1 A/AA violations on the page as it is now, one line each (empty: none). */
export async function wcagViolations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.slice(0, 3)
    .map((n) => n.target.join(' ')).join(', ')}`);
}
