// The editor's draft (script, stdin, limits) kept in localStorage, so that
// a reload or a closed tab loses nothing. Limits are stored as the user set
// them; absent means "the server's default".

import type { Limits } from './api';

export interface Draft {
  script: string;
  stdin: string;
  limits: Partial<Limits>;
  /** The saved script this draft was opened from: Save then updates it. */
  saved?: { id: string; name: string };
}

const KEY = 'integr8scode.draft.v1';

export const DEFAULT_SCRIPT = 'print("Hello from Integr8sCode!")\n';

export function loadDraft(storage: Storage | undefined = globalThis.localStorage): Draft {
  const empty: Draft = { script: DEFAULT_SCRIPT, stdin: '', limits: {} };
  try {
    const raw = storage?.getItem(KEY);
    if (!raw) return empty;
    const d = JSON.parse(raw) as Partial<Draft>;
    return {
      script: typeof d.script === 'string' ? d.script : empty.script,
      stdin: typeof d.stdin === 'string' ? d.stdin : '',
      limits: d.limits && typeof d.limits === 'object' ? d.limits : {},
      ...(d.saved && typeof d.saved.id === 'string' && typeof d.saved.name === 'string' ? { saved: { id: d.saved.id, name: d.saved.name } } : {}),
    };
  } catch {
    return empty; // storage disabled or a damaged entry: start afresh
  }
}

export function saveDraft(d: Draft, storage: Storage | undefined = globalThis.localStorage): void {
  try {
    storage?.setItem(KEY, JSON.stringify(d));
  } catch {
    // storage full or disabled (private windows): the draft lives in memory only
  }
}
