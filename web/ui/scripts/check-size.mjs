// The build check: JavaScript sent on first load stays under 200 KB
// gzipped; `npm run build` fails when it is over.
//
// A first load fetches the entry with everything it imports statically,
// then the one dynamic import its page needs: the editor (/) loads
// CodeMirror right after the first paint, each page for signed-in users
// (history, scripts, tokens, admin) its own chunk (App.svelte). So the
// figure checked is the static closure of the entry plus the heaviest
// closure of one of the entry's dynamic imports, i.e. the first load of
// the heaviest first page. It also prints everything reachable, for scale.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const LIMIT = 200 * 1000;
const dir = new URL('../dist/app/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('.vite/manifest.json', dir), 'utf8'));
const entry = Object.keys(manifest).find((k) => manifest[k].isEntry);
if (!entry) throw new Error('the manifest names no entry');

const gz = new Map();
const size = (key) => {
  const file = manifest[key].file;
  if (!file.endsWith('.js')) return 0;
  if (!gz.has(file)) gz.set(file, gzipSync(readFileSync(new URL(file, dir)), { level: 9 }).length);
  return gz.get(file);
};
// Keys reachable from `from` by static imports (and dynamic ones too, if asked).
const closure = (from, dynamic, seen = new Set()) => {
  if (seen.has(from)) return seen;
  seen.add(from);
  for (const k of manifest[from].imports ?? []) closure(k, dynamic, seen);
  if (dynamic) for (const k of manifest[from].dynamicImports ?? []) closure(k, dynamic, seen);
  return seen;
};
const total = (keys) => [...keys].reduce((n, k) => n + size(k), 0);

const base = closure(entry, false);
const lines = [`  ${manifest[entry].file} and its static imports: ${(total(base) / 1000).toFixed(1)} kB gzipped`];
let worst = { name: '(none)', bytes: total(base) };
for (const dyn of new Set([...base].flatMap((k) => manifest[k].dynamicImports ?? []))) {
  const keys = closure(dyn, false, new Set(base));
  const bytes = total(keys);
  lines.push(`  + ${manifest[dyn].file} (${dyn}): ${((bytes - total(base)) / 1000).toFixed(1)} kB`);
  if (bytes > worst.bytes) worst = { name: dyn, bytes };
}
console.log(lines.join('\n'));
console.log(`Everything reachable, all pages: ${(total(closure(entry, true)) / 1000).toFixed(1)} kB gzipped`);
const verdict = `JavaScript on first load (heaviest first page, with ${worst.name}): ${(worst.bytes / 1000).toFixed(1)} kB gzipped (limit ${LIMIT / 1000} kB)`;
if (worst.bytes > LIMIT) {
  console.error(`${verdict}: too much`);
  process.exit(1);
}
console.log(verdict);
