// Figures of a JSON document as label/value rows, for /api/v1/stats once
// the server has it: its shape is not settled yet, so the admin page shows
// whatever numbers, words and flags it holds, by their names, rather than
// guessing at a layout.

import { isObject, type JSONValue } from './json';

export interface Figure {
  label: string;
  value: string;
}

const words = (name: string) => name.replace(/[_.]+/g, ' ');

export function figures(doc: JSONValue, prefix = '', out: Figure[] = [], depth = 0): Figure[] {
  if (depth > 4 || out.length >= 200) return out;
  if (isObject(doc)) {
    for (const [k, v] of Object.entries(doc)) figures(v, prefix ? `${prefix} › ${words(k)}` : words(k), out, depth + 1);
  } else if (Array.isArray(doc)) {
    out.push({ label: prefix, value: `${doc.length} items` });
  } else if (typeof doc === 'number') {
    out.push({ label: prefix, value: doc.toLocaleString() });
  } else if (typeof doc === 'string' || typeof doc === 'boolean') {
    out.push({ label: prefix, value: String(doc) });
  }
  return out;
}
