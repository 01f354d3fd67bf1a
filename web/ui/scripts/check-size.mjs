// The build check: JavaScript sent on first load stays under 200 KB
// gzipped. It counts every script reachable from index.html through
// static AND dynamic imports (the editor page loads CodeMirror at once),
// so it bounds what the heaviest first page can fetch; `npm run build`
// fails when it is over.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const LIMIT = 200 * 1000;
const dir = new URL('../dist/app/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('.vite/manifest.json', dir), 'utf8'));
const entry = Object.keys(manifest).find((k) => manifest[k].isEntry);
if (!entry) throw new Error('the manifest names no entry');

const seen = new Set();
const walk = (key) => {
  if (seen.has(key)) return;
  seen.add(key);
  for (const k of [...(manifest[key].imports ?? []), ...(manifest[key].dynamicImports ?? [])]) walk(k);
};
walk(entry);

let total = 0;
const lines = [];
for (const key of seen) {
  const file = manifest[key].file;
  if (!file.endsWith('.js')) continue;
  const gz = gzipSync(readFileSync(new URL(file, dir)), { level: 9 }).length;
  total += gz;
  lines.push(`  ${file}: ${(gz / 1000).toFixed(1)} kB gzipped`);
}
console.log(lines.join('\n'));
const verdict = `JavaScript on first load: ${(total / 1000).toFixed(1)} kB gzipped (limit ${LIMIT / 1000} kB)`;
if (total > LIMIT) {
  console.error(`${verdict}: too much`);
  process.exit(1);
}
console.log(verdict);
