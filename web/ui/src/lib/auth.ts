// Keeping a browser signed in. The session cookies are HttpOnly: this code
// never sees a token. What it keeps (in localStorage, shared by the tabs)
// is only when the access cookie ends, from the expires_in of the last
// sign-in or refresh. Two reasons:
//
// - The access cookie lives 10 minutes and the browser drops it once it
//   expires. A request without it is anonymous, and routes open to
//   anonymous callers (submitting, reading an execution) would then act
//   anonymously instead of failing: a run would silently leave the user's
//   history. So before a request, a session that has ended or is about to
//   is refreshed first.
// - Otherwise a 401 from a request sent with the session is answered by
//   refreshing once and retrying once.
//
// A refresh token is spent by its use, and presenting a spent one again
// revokes the whole sign-in (docs/security.md). So one refresh at a time:
// within a tab, concurrent callers share one promise; across tabs, a Web
// Lock serialises them and a tab that waited reuses the refresh another
// tab just made instead of spending the same cookie twice.

const HINT_KEY = 'integr8scode.session.v1';
const LOCK = 'integr8scode.refresh';
/** Refresh this long before the access cookie ends (clock skew, slow requests). */
export const EARLY_MS = 20_000;
/** The routes that make or end sessions: never refreshed around. */
const SESSION_ROUTES = /^\/api\/v1\/auth\/(login|register|refresh|logout)(\?|$)/;
/** The session probe: a 401 there may only mean the access cookie expired. */
const PROBE = /^\/api\/v1\/auth\/me(\?|$)/;

interface Hint {
  accessEndsAt: number; // ms since the epoch
}

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined; // storage disabled
  }
}

export function readHint(): Hint | null {
  try {
    const raw = storage()?.getItem(HINT_KEY);
    if (!raw) return null;
    const h = JSON.parse(raw) as Partial<Hint>;
    return typeof h.accessEndsAt === 'number' ? { accessEndsAt: h.accessEndsAt } : null;
  } catch {
    return null;
  }
}

/** After a sign-in or refresh: the access cookie ends in expiresIn seconds. */
export function noteSession(expiresInSeconds: number, now = Date.now()): void {
  try {
    storage()?.setItem(HINT_KEY, JSON.stringify({ accessEndsAt: now + expiresInSeconds * 1000 }));
  } catch {
    // no storage: the 401 path still refreshes
  }
}

const endedListeners = new Set<() => void>();
/** Called when the sign-in is over (refused refresh, sign-out). */
export function onSessionEnded(f: () => void): () => void {
  endedListeners.add(f);
  return () => endedListeners.delete(f);
}

export function forgetSession(): void {
  try {
    storage()?.removeItem(HINT_KEY);
  } catch {
    // nothing to forget
  }
  for (const f of endedListeners) f();
}

let inflight: Promise<boolean> | null = null;

/**
 * Rotates the session cookies: true when the browser holds a fresh access
 * cookie afterwards, false when the sign-in is over (the server refused).
 * Network failures and server errors throw and leave the session as it is.
 */
export function refreshSession(): Promise<boolean> {
  if (inflight) return inflight;
  const seen = readHint()?.accessEndsAt;
  const run = async (): Promise<boolean> => {
    // Another tab refreshed while this one waited for the lock: its new
    // cookies are this tab's too.
    const now = readHint();
    if (now && now.accessEndsAt !== seen && now.accessEndsAt - Date.now() > EARLY_MS) return true;
    const resp = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
    });
    if (resp.ok) {
      const body = (await resp.json()) as { expires_in?: number };
      noteSession(typeof body.expires_in === 'number' ? body.expires_in : 600);
      return true;
    }
    if (resp.status === 401) {
      forgetSession();
      return false;
    }
    throw new Error(`refreshing the sign-in failed: ${resp.status}`);
  };
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const p: Promise<boolean> = (locks ? locks.request(LOCK, run).then((held) => held) : run()).finally(() => {
    inflight = null;
  });
  inflight = p;
  return p;
}

/** Before a request that must carry the session (a stream, say): refresh an ended one. */
export async function ensureFresh(): Promise<void> {
  const h = readHint();
  if (h && h.accessEndsAt - Date.now() < EARLY_MS) {
    try {
      await refreshSession();
    } catch {
      // the request goes ahead; its own answer says what is wrong
    }
  }
}

/**
 * fetch for the API: refreshes an ended session first, and on a 401 from a
 * request sent while signed in, refreshes once and retries once.
 */
export async function sessionFetch(path: string, init: RequestInit = {}): Promise<Response> {
  if (SESSION_ROUTES.test(path)) return fetch(path, init);
  await ensureFresh();
  const signedIn = readHint() !== null;
  const resp = await fetch(path, init);
  if (resp.status !== 401 || !(signedIn || PROBE.test(path))) return resp;
  let fresh = false;
  try {
    fresh = await refreshSession();
  } catch {
    return resp;
  }
  return fresh ? fetch(path, init) : resp;
}

/** Retry-After (seconds or an HTTP date) as seconds from now, if it says. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** "in 1 second", "in 45 seconds", "in 2 minutes and 5 seconds", "in 1 hour and 3 minutes". */
export function inWords(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  const unit = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (s < 60) return `in ${unit(s, 'second')}`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = s % 60;
    return `in ${unit(m, 'minute')}${rest ? ` and ${unit(rest, 'second')}` : ''}`;
  }
  const minutes = Math.ceil(s / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `in ${unit(h, 'hour')}${m ? ` and ${unit(m, 'minute')}` : ''}`;
}
