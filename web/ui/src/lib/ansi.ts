// ANSI escape sequences (SGR: colours, bold, italic, underline) turned into
// styled spans. The output is untrusted text: it is only ever put in text
// nodes (AnsiText.svelte renders {span.text}), never parsed as HTML, and a
// colour becomes a class name from a fixed set or a CSSOM colour, never
// markup. Escape sequences other than SGR (cursor moves, titles, OSC
// hyperlinks) are dropped.

export interface Span {
  text: string;
  classes: string; // from a fixed set: ansi-fg-N, ansi-bg-N, ansi-bold …
  fg?: string; // rgb(r, g, b) for 256-colour and true-colour codes
  bg?: string;
}

interface Style {
  fg?: number | string;
  bg?: number | string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
}

// CSI … final byte, or OSC … BEL/ST, or a lone two-byte escape.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]?)/g;

function cube(n: number): string {
  if (n < 16) return ''; // handled as a class
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const c = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(i / 36))}, ${c(Math.floor(i / 6) % 6)}, ${c(i % 6)})`;
}

function extended(params: number[], i: number): { colour?: number | string; used: number } {
  if (params[i + 1] === 5 && params[i + 2] !== undefined) {
    const n = params[i + 2];
    if (n >= 0 && n < 256) return { colour: n < 16 ? n : cube(n), used: 2 };
    return { used: 2 };
  }
  if (params[i + 1] === 2 && params[i + 4] !== undefined) {
    const [r, g, b] = params.slice(i + 2, i + 5).map((x) => Math.max(0, Math.min(255, x)));
    return { colour: `rgb(${r}, ${g}, ${b})`, used: 4 };
  }
  return { used: 0 };
}

function apply(style: Style, codes: string): Style {
  const params = codes === '' ? [0] : codes.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  const s = { ...style };
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === 0) Object.keys(s).forEach((k) => delete s[k as keyof Style]);
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 3) s.italic = true;
    else if (p === 4) s.underline = true;
    else if (p === 7) s.inverse = true;
    else if (p === 22) s.bold = s.dim = false;
    else if (p === 23) s.italic = false;
    else if (p === 24) s.underline = false;
    else if (p === 27) s.inverse = false;
    else if (p >= 30 && p <= 37) s.fg = p - 30;
    else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
    else if (p === 39) delete s.fg;
    else if (p >= 40 && p <= 47) s.bg = p - 40;
    else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
    else if (p === 49) delete s.bg;
    else if (p === 38 || p === 48) {
      const { colour, used } = extended(params, i);
      if (colour !== undefined) s[p === 38 ? 'fg' : 'bg'] = colour;
      i += used;
    }
  }
  return s;
}

function toSpan(text: string, s: Style): Span {
  let fg = s.fg;
  let bg = s.bg;
  if (s.inverse) [fg, bg] = [bg ?? 'default-bg', fg ?? 'default-fg'];
  const classes: string[] = [];
  const span: Span = { text, classes: '' };
  if (typeof fg === 'number') classes.push(`ansi-fg-${fg}`);
  else if (fg === 'default-fg' || fg === 'default-bg') classes.push(`ansi-fg-${fg}`);
  else if (fg) span.fg = fg;
  if (typeof bg === 'number') classes.push(`ansi-bg-${bg}`);
  else if (bg === 'default-fg' || bg === 'default-bg') classes.push(`ansi-bg-${bg}`);
  else if (bg) span.bg = bg;
  if (s.bold) classes.push('ansi-bold');
  if (s.dim) classes.push('ansi-dim');
  if (s.italic) classes.push('ansi-italic');
  if (s.underline) classes.push('ansi-underline');
  span.classes = classes.join(' ');
  return span;
}

/** Splits text into spans of one style each; escape sequences are removed. */
export function parseAnsi(text: string): Span[] {
  const spans: Span[] = [];
  let style: Style = {};
  let last = 0;
  const push = (t: string) => {
    if (!t) return;
    const s = toSpan(t, style);
    const prev = spans[spans.length - 1];
    if (prev && prev.classes === s.classes && prev.fg === s.fg && prev.bg === s.bg) prev.text += t;
    else spans.push(s);
  };
  for (const m of text.matchAll(ESCAPE)) {
    push(text.slice(last, m.index));
    last = m.index! + m[0].length;
    if (m[2] === 'm') style = apply(style, m[1] ?? '');
  }
  push(text.slice(last));
  return spans;
}

/** The text without escape sequences, for copying. */
export function stripAnsi(text: string): string {
  return parseAnsi(text)
    .map((s) => s.text)
    .join('');
}
