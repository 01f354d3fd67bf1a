// Keeping a browser signed in (lib/auth.ts) and saying when to try again.
// fetch is replaced only here, at the network edge, by a scripted server
// that records what it was asked.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sessionFetch, noteSession, readHint, onSessionEnded, retryAfterSeconds, inWords, EARLY_MS } from '../src/lib/auth';
import { api, ApiError, errorMessage } from '../src/lib/api';
import { diffLines } from '../src/lib/diff';
import { loadDraft, saveDraft } from '../src/lib/draft';

type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

/** A server that answers each path from its own queue of answers, and logs every request. */
function server(answers: Record<string, Answer[]>) {
  const log: string[] = [];
  vi.stubGlobal('fetch', async (path: string, init?: RequestInit) => {
    log.push(`${init?.method ?? 'GET'} ${path}`);
    const queue = answers[path];
    const a = queue?.shift();
    if (!a) throw new Error(`unexpected request ${path}`);
    return new Response(a.body === undefined ? null : JSON.stringify(a.body), { status: a.status, headers: a.headers });
  });
  return log;
}

const unauthorized: Answer = { status: 401, body: { error: { code: 'unauthorized', message: 'sign in first' } } };
const refreshed: Answer = { status: 200, body: { access_token: 'x', token_type: 'Bearer', expires_in: 600 } };

beforeEach(() => localStorage.clear());
afterEach(() => vi.unstubAllGlobals());

describe('a 401 while signed in', () => {
  it('is refreshed once and the request retried once', async () => {
    noteSession(600);
    const log = server({
      '/api/v1/scripts': [unauthorized, { status: 200, body: { scripts: [] } }],
      '/api/v1/auth/refresh': [refreshed],
    });
    expect(await api.scripts()).toEqual({ scripts: [] });
    expect(log).toEqual(['GET /api/v1/scripts', 'POST /api/v1/auth/refresh', 'GET /api/v1/scripts']);
    expect(readHint()!.accessEndsAt).toBeGreaterThan(Date.now() + 590_000);
  });

  it('is not refreshed twice: a second 401 is the answer', async () => {
    noteSession(600);
    const log = server({ '/api/v1/scripts': [unauthorized, unauthorized], '/api/v1/auth/refresh': [refreshed] });
    const err = await api.scripts().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(log).toEqual(['GET /api/v1/scripts', 'POST /api/v1/auth/refresh', 'GET /api/v1/scripts']);
  });

  it('from requests at once spends the refresh cookie once (a second use would revoke the sign-in)', async () => {
    noteSession(600);
    const log = server({
      '/api/v1/scripts': [unauthorized, { status: 200, body: { scripts: [] } }],
      '/api/v1/auth/tokens': [unauthorized, { status: 200, body: { tokens: [] } }],
      '/api/v1/auth/refresh': [refreshed],
    });
    await Promise.all([api.scripts(), api.tokens()]);
    expect(log.filter((l) => l.endsWith('/refresh'))).toHaveLength(1);
  });

  it('ends the session when the refresh is refused, without retrying', async () => {
    noteSession(600);
    const ended = vi.fn();
    const stop = onSessionEnded(ended);
    const log = server({ '/api/v1/scripts': [unauthorized], '/api/v1/auth/refresh': [unauthorized] });
    const err = await api.scripts().catch((e) => e);
    stop();
    expect(err.status).toBe(401);
    expect(log).toEqual(['GET /api/v1/scripts', 'POST /api/v1/auth/refresh']);
    expect(ended).toHaveBeenCalledOnce();
    expect(readHint()).toBeNull();
  });

  it('keeps the session when the refresh fails for another reason (the server is down)', async () => {
    noteSession(600);
    server({ '/api/v1/scripts': [unauthorized], '/api/v1/auth/refresh': [{ status: 503 }] });
    expect((await api.scripts().catch((e) => e)).status).toBe(401);
    expect(readHint()).not.toBeNull();
  });
});

describe('without a session', () => {
  it('a 401 is the answer, with no refresh attempted', async () => {
    const log = server({ '/api/v1/executions': [unauthorized] });
    expect((await api.list({}).catch((e) => e)).status).toBe(401);
    expect(log).toEqual(['GET /api/v1/executions']);
  });

  it('the session probe still tries a refresh cookie the browser may hold', async () => {
    const log = server({
      '/api/v1/auth/me': [unauthorized, { status: 200, body: { id: 'u', username: 'ada', role: 'user', created_at: '' } }],
      '/api/v1/auth/refresh': [refreshed],
    });
    expect((await api.me()).username).toBe('ada');
    expect(log).toEqual(['GET /api/v1/auth/me', 'POST /api/v1/auth/refresh', 'GET /api/v1/auth/me']);
  });

  it('sign-in and sign-up are never refreshed around', async () => {
    const log = server({ '/api/v1/auth/login': [{ status: 401, body: { error: { code: 'unauthorized', message: 'username or password is incorrect' } } }] });
    const err = await api.login('ada', 'wrong').catch((e) => e);
    expect(err.message).toBe('username or password is incorrect');
    expect(log).toEqual(['POST /api/v1/auth/login']);
  });
});

describe('an access cookie known to have ended', () => {
  it('is refreshed before the request, so that it is not sent anonymously', async () => {
    noteSession(1, Date.now() - EARLY_MS); // ended
    const log = server({
      '/api/v1/auth/refresh': [refreshed],
      '/api/v1/executions': [{ status: 202, body: { execution_id: 'e', status: 'queued' } }],
    });
    await api.submit({ script: 'print(1)' });
    expect(log).toEqual(['POST /api/v1/auth/refresh', 'POST /api/v1/executions']);
  });

  it('is left alone while it has time to live', async () => {
    noteSession(600);
    const log = server({ '/api/v1/runtimes': [{ status: 200, body: {} }] });
    await sessionFetch('/api/v1/runtimes');
    expect(log).toEqual(['GET /api/v1/runtimes']);
  });

  it('sign-in records when it ends; sign-out forgets it', async () => {
    server({ '/api/v1/auth/login': [{ status: 200, body: { access_token: 't', token_type: 'Bearer', expires_in: 300 } }], '/api/v1/auth/logout': [{ status: 204 }] });
    await api.login('ada', 'a long enough password');
    expect(readHint()!.accessEndsAt).toBeGreaterThan(Date.now() + 290_000);
    await api.logout();
    expect(readHint()).toBeNull();
  });
});

describe('Retry-After in words', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(retryAfterSeconds('12', now)).toBe(12);
    expect(retryAfterSeconds('Wed, 02 Dec 2026 10:01:30 GMT', now)).toBe(90);
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds(null, now)).toBeUndefined();
  });

  it('says how long', () => {
    expect([1, 45, 60, 125, 3600, 3661, 7199].map(inWords)).toEqual([
      'in 1 second',
      'in 45 seconds',
      'in 1 minute',
      'in 2 minutes and 5 seconds',
      'in 1 hour',
      'in 1 hour and 2 minutes',
      'in 2 hours',
    ]);
  });

  it('is added to a 429, and the server words stay as they are', async () => {
    const message = 'you have 2 executions queued or running, the most allowed at once; retry when one ends';
    server({
      '/api/v1/executions': [{ status: 429, body: { error: { code: 'too_many_requests', message } }, headers: { 'Retry-After': '12' } }],
    });
    const err = await api.submit({ script: 'print(1)' }).catch((e) => e);
    expect([err.status, err.retryAfter, err.message]).toEqual([429, 12, `${message}. Try again in 12 seconds.`]);
    expect(errorMessage(503, 'the platform has 500 or more executions waiting; retry in a moment', 10)).toBe(
      'the platform has 500 or more executions waiting; retry in a moment. Try again in 10 seconds.',
    );
    // Any other error is the server's message verbatim (a weak password's reason, say).
    expect(errorMessage(422, 'password must be at least 15 characters (a few unrelated words make a good one)')).toBe(
      'password must be at least 15 characters (a few unrelated words make a good one)',
    );
  });
});

describe('the rest of the account pages’ helpers', () => {
  it('diffs an empty output as no lines', () => {
    expect(diffLines('', 'careful')).toEqual([{ kind: 'added', text: 'careful' }]);
    expect(diffLines('', '')).toEqual([]);
  });

  it('keeps the saved script a draft was opened from', () => {
    saveDraft({ script: 'print(1)', stdin: '', limits: {}, saved: { id: 's1', name: 'one' } });
    expect(loadDraft().saved).toEqual({ id: 's1', name: 'one' });
    saveDraft({ script: 'print(1)', stdin: '', limits: {} });
    expect(loadDraft().saved).toBeUndefined();
  });
});
