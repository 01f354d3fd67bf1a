// A strict JSON reader for ledger records. JSON.parse keeps the last of two
// members with the same name, so a record could show one value and be
// hashed with another by a reader that parses differently; docs/events.md
// says a record whose members repeat a name is not a record, and the Go and
// Python verifiers refuse it. This reader refuses it too, and lone UTF-16
// surrogates (not Unicode, so no canonical form). Numbers become doubles,
// as RFC 8785 reads them. Objects have no prototype, so a member named
// "__proto__" is only a member.

export class JSONError extends Error {}

export type JSONValue = null | boolean | number | string | JSONValue[] | { [name: string]: JSONValue };

const MAX_DEPTH = 512;

// Objects that repeated a member name, when parseStrict was asked to mark
// them rather than fail: a response that lists many records stays readable
// and only the record holding such an object is refused (hasRepeatedNames).
const repeated = new WeakSet<object>();

export function parseStrict(text: string, opts: { markRepeated?: boolean } = {}): JSONValue {
  let i = 0;
  const fail = (why: string): never => {
    throw new JSONError(`${why} at character ${i}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        fail('bad escape');
      }
      start = i;
    }
    out += text.slice(start, i);
    i++; // closing quote
    if (!out.isWellFormed()) fail('lone UTF-16 surrogate in a string');
    return out;
  };
  const num = (): number => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail('bad number');
    i += m![0].length;
    const v = Number(m![0]);
    if (!Number.isFinite(v)) fail('number out of range for a double');
    return v;
  };
  const value = (depth: number): JSONValue => {
    if (depth > MAX_DEPTH) fail('nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null) as { [name: string]: JSONValue };
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name');
        const name = str();
        if (Object.prototype.hasOwnProperty.call(obj, name)) {
          if (!opts.markRepeated) fail(`repeated member name ${JSON.stringify(name)}`);
          repeated.add(obj);
        }
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[name] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: JSONValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    return num();
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('text after the value');
  return v;
}

export function isObject(v: JSONValue | undefined): v is { [name: string]: JSONValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// hasRepeatedNames tells whether v, at any depth, holds an object that
// repeated a member name (parsed with markRepeated).
export function hasRepeatedNames(v: JSONValue): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (repeated.has(v)) return true;
  return (Array.isArray(v) ? v : Object.values(v)).some(hasRepeatedNames);
}
