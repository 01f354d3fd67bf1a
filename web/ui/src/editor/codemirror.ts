// CodeMirror 6 for Python, loaded on demand (CodeEditor.svelte imports
// this module dynamically) so that the rest of the app shows at once.
// Colours come from CSS classes (classHighlighter: tok-keyword …) styled in
// app.css for both themes, rather than from generated style rules per
// theme.

import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection, highlightSpecialChars } from '@codemirror/view';
import { EditorState, Prec, Compartment } from '@codemirror/state';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { python } from '@codemirror/lang-python';
import { indentOnInput, bracketMatching, syntaxHighlighting, indentUnit } from '@codemirror/language';
import { searchKeymap, highlightSelectionMatches, search } from '@codemirror/search';
import { classHighlighter } from '@lezer/highlight';

export interface EditorOptions {
  parent: HTMLElement;
  doc: string;
  label: string;
  describedBy?: string;
  readOnly?: boolean;
  onChange?: (doc: string) => void;
  onRun?: () => void;
}

export interface Editor {
  set(doc: string): void;
  get(): string;
  focus(): void;
  setReadOnly(ro: boolean): void;
  destroy(): void;
}

const baseTheme = EditorView.theme({
  '&': { color: 'var(--fg)', backgroundColor: 'var(--code-bg)', fontSize: '0.95rem' },
  '.cm-content': { fontFamily: 'var(--mono)', caretColor: 'var(--fg)', padding: '0.5rem 0' },
  '.cm-gutters': { backgroundColor: 'var(--code-bg)', color: 'var(--muted)', borderRight: '1px solid var(--border)' },
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--active-line)' },
  '&.cm-focused': { outline: '2px solid var(--focus)', outlineOffset: '2px' },
  '&.cm-focused .cm-cursor': { borderLeftColor: 'var(--fg)' },
  '.cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection': { backgroundColor: 'var(--selection) !important' },
  '.cm-panels': { backgroundColor: 'var(--surface)', color: 'var(--fg)' },
  '.cm-panel input, .cm-panel button': { color: 'var(--fg)' },
  '.cm-searchMatch': { backgroundColor: 'var(--search-match)' },
});

// The page's style nonce (web/ui.go): CodeMirror's <style> element must
// carry it to pass the Content-Security-Policy.
function styleNonce(): string {
  const n = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? '';
  return n === 'CSP_NONCE_PLACEHOLDER' ? '' : n; // the dev server does not fill it in
}

export function createEditor(o: EditorOptions): Editor {
  const readOnly = new Compartment();
  const ro = (v: boolean) => [EditorState.readOnly.of(v), EditorView.editable.of(!v)];
  const view = new EditorView({
    parent: o.parent,
    state: EditorState.create({
      doc: o.doc,
      extensions: [
        // Ctrl/Cmd+Enter runs, before any other binding of the key.
        Prec.highest(
          keymap.of([
            {
              key: 'Mod-Enter',
              run: () => {
                o.onRun?.();
                return true;
              },
            },
          ]),
        ),
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        indentUnit.of('    '),
        bracketMatching(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        search({ top: true }),
        syntaxHighlighting(classHighlighter),
        python(),
        // Tab indents; Escape then Tab (or Ctrl-M / Shift-Alt-M) leaves the
        // editor for keyboard users, as CodeMirror documents.
        keymap.of([...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({
          'aria-label': o.label,
          ...(o.describedBy ? { 'aria-describedby': o.describedBy } : {}),
        }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) o.onChange?.(u.state.doc.toString());
        }),
        readOnly.of(ro(!!o.readOnly)),
        EditorView.cspNonce.of(styleNonce()),
        baseTheme,
      ],
    }),
  });
  return {
    set(doc: string) {
      if (doc !== view.state.doc.toString()) {
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: doc } });
      }
    },
    get: () => view.state.doc.toString(),
    focus: () => view.focus(),
    setReadOnly: (v: boolean) => view.dispatch({ effects: readOnly.reconfigure(ro(v)) }),
    destroy: () => view.destroy(),
  };
}
