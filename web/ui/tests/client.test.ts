// The client's pure parts and its error handling. fetch is replaced only
// here, at the network edge, to give the answers a server gives.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError } from '../src/lib/api';
import { parseAnsi, stripAnsi } from '../src/lib/ansi';
import { applyEvent, liveFrom } from '../src/lib/run.svelte';
import { loadDraft, saveDraft, DEFAULT_SCRIPT } from '../src/lib/draft';
import { diffLines } from '../src/lib/diff';
import { match } from '../src/lib/router.svelte';
import type { Execution } from '../src/lib/api';

afterEach(() => vi.unstubAllGlobals());

describe('api errors', () => {
  it("carry the server's code and message", async () => {
    vi.stubGlobal('fetch', async () => new Response('{"error":{"code":"unprocessable","message":"script is empty"}}', { status: 422 }));
    const err = await api.submit({ script: '' }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.code, err.message]).toEqual([422, 'unprocessable', 'script is empty']);
  });
  it('say the server cannot be reached when the network fails', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    const err = await api.runtimes().catch((e) => e);
    expect(err.message).toMatch(/cannot be reached/);
  });
  it('reads event records strictly: a repeated member survives to be refused', async () => {
    const body = '{"execution_id":"x","chain_valid":true,"events":[{"partition":0,"offset":1,"record":{"a":1,"a":2}}]}';
    vi.stubGlobal('fetch', async () => new Response(body, { status: 200 }));
    const page = await api.events('x');
    expect(page.records).toHaveLength(1);
    const { hasRepeatedNames } = await import('../src/lib/json');
    expect(hasRepeatedNames(page.records[0])).toBe(true);
  });
});

describe('ansi', () => {
  it('handles 256 and true colours, resets, and drops other escapes', () => {
    const spans = parseAnsi('\x1b[38;5;196mA\x1b[38;2;1;2;3mB\x1b[0mC\x1b]0;title\x07D\x1b[2KE');
    expect(spans.map((s) => [s.text, s.fg ?? '', s.classes])).toEqual([
      ['A', 'rgb(255, 0, 0)', ''],
      ['B', 'rgb(1, 2, 3)', ''],
      ['CDE', '', ''],
    ]);
    expect(stripAnsi('\x1b[1mbold\x1b[22m')).toBe('bold');
  });
});

describe('live status from ledger events', () => {
  it('moves queued → running → failed with the result', () => {
    let live = liveFrom({ status: 'queued', limits: { timeout_ms: 1000, memory_bytes: 1, cpu_millicores: 1 } } as Execution);
    live = applyEvent(live, 'ExecutionStarted', { runner: 'r1', attempt: 1 });
    expect(live.status).toBe('running');
    live = applyEvent(live, 'ExecutionAbandoned', { reason: 'lease_expired' });
    expect(live.waitingForRunner).toBe(true);
    live = applyEvent(live, 'ExecutionFailed', {
      reason: 'timeout',
      result: { stdout: 'partial', stderr: '', signal: 'SIGKILL', output_truncated: false, resource_usage: { wall_time_ms: 1000, cpu_time_ms: 990, peak_memory_bytes: 1 } },
    });
    expect([live.status, live.failureReason, live.output, live.signal, live.usage?.cpu_time_ms]).toEqual(['failed', 'timeout', 'partial', 'SIGKILL', 990]);
  });
  it('keeps sealed output out of the page and follows an erasure', () => {
    let live = liveFrom({ status: 'running', output: '', errors: '', limits: { timeout_ms: 1000, memory_bytes: 1, cpu_millicores: 1 } } as unknown as Execution);
    live = applyEvent(live, 'ExecutionCompleted', {
      result: { verdict: 'completed', exit_code: 0, output: 'AQxyz', output_truncated: false, resource_usage: { wall_time_ms: 5, cpu_time_ms: 4, peak_memory_bytes: 1 } },
    });
    expect([live.status, live.output, live.exitCode, live.erased]).toEqual(['completed', '', 0, false]);
    live = { ...live, output: 'hi\n' }; // as the view, read after the end, has it
    live = applyEvent(live, 'ExecutionErased', { reason: 'request' });
    expect([live.status, live.output, live.erased]).toEqual(['completed', '', true]);
  });
});

describe('draft', () => {
  it('round-trips and survives a damaged entry', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) } as Storage;
    saveDraft({ script: 'print(1)', stdin: 'x', limits: { timeout_ms: 2000 } }, storage);
    expect(loadDraft(storage)).toEqual({ script: 'print(1)', stdin: 'x', limits: { timeout_ms: 2000 } });
    store.set('integr8scode.draft.v1', '{not json');
    expect(loadDraft(storage).script).toBe(DEFAULT_SCRIPT);
  });
});

describe('diff and routes', () => {
  it('diffs lines', () => {
    expect(diffLines('a\nb\nc', 'a\nc\nd')).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'removed', text: 'b' },
      { kind: 'same', text: 'c' },
      { kind: 'added', text: 'd' },
    ]);
  });
  it('matches page paths', () => {
    expect(match('/')).toEqual({ page: 'editor' });
    expect(match('/executions/abc')).toEqual({ page: 'execution', id: 'abc' });
    expect(match('/history/')).toEqual({ page: 'history' });
    expect(match('/tokens')).toEqual({ page: 'tokens' });
    expect(match('/admin')).toEqual({ page: 'admin', section: 'overview' });
    expect(match('/admin/users/')).toEqual({ page: 'admin', section: 'users' });
    expect(match('/admin/executions')).toEqual({ page: 'admin', section: 'executions' });
    expect(match('/nope').page).toBe('not-found');
  });
});
