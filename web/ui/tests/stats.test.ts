// Statistics (GET /api/v1/stats): the ranges asked for, the figures in
// words, the chart and tables in jsdom, and the admin overview against a
// scripted server (fetch replaced at the network edge only).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, within } from '@testing-library/svelte';
import { chartSummary, duration, percentileRows, rangeQuery, ranked, type Stats } from '../src/lib/stats';
import StatsView from '../src/components/StatsView.svelte';
import AdminOverview from '../src/components/AdminOverview.svelte';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const MiB = 1024 * 1024;
const sample = (over: Partial<Stats> = {}): Stats => ({
  from: '2026-03-01T00:00:00Z',
  to: '2026-03-01T03:00:00Z',
  bucket: 'hour',
  executions: 6,
  by_status: { completed: 3, failed: 2, running: 1 },
  by_failure_reason: { timeout: 1, runtime_error: 1 },
  by_runtime: { 'python 3.11': 5, 'python 3.12': 1 },
  by_owner: { u1: 4, anonymous: 2 },
  queue_wait_ms: { count: 6, p50: 12, p95: 900, p99: 1500, max: 75_000 },
  wall_time_ms: { count: 5, p50: 40, p95: 1000, p99: 1000, max: 1000 },
  cpu_time_ms: { count: 5, p50: 20, p95: 990, p99: 990, max: 990 },
  peak_memory_bytes: { count: 5, p50: 9 * MiB, p95: 128 * MiB, p99: 128 * MiB, max: 128 * MiB },
  buckets: [
    { start: '2026-03-01T00:00:00Z', executions: 1 },
    { start: '2026-03-01T01:00:00Z', executions: 0 },
    { start: '2026-03-01T02:00:00Z', executions: 5 },
  ],
  ...over,
});

describe('ranges', () => {
  const now = new Date('2026-03-10T14:25:30.500Z');
  it('asks for 24 whole hours, the current one last', () => {
    expect(rangeQuery('24h', now)).toEqual({ from: '2026-03-09T15:00:00.000Z', to: '2026-03-10T14:25:30.500Z', bucket: 'hour' });
  });
  it('asks for 7 and 30 UTC days, today last', () => {
    expect(rangeQuery('7d', now)).toEqual({ from: '2026-03-04T00:00:00.000Z', to: '2026-03-10T14:25:30.500Z', bucket: 'day' });
    expect(rangeQuery('30d', now).from).toBe('2026-02-09T00:00:00.000Z');
  });
});

describe('figures in words', () => {
  it('ranks counts, largest first, then by name', () => {
    expect(ranked({ b: 1, a: 1, c: 3 })).toEqual([
      ['c', 3],
      ['a', 1],
      ['b', 1],
    ]);
    expect(ranked(undefined)).toEqual([]);
  });
  it('says durations in ms, s, min and h', () => {
    expect([duration(999), duration(1500), duration(90_000), duration(5_400_000)]).toEqual(['999 ms', '1.50 s', '1.5 min', '1.5 h']);
  });
  it('makes percentile rows in human units, none for a measure no run has', () => {
    const rows = percentileRows(sample({ cpu_time_ms: { count: 0, p50: 0, p95: 0, p99: 0, max: 0 } }));
    expect(rows.map((r) => r.measure)).toEqual(['Queue wait', 'Wall time', 'CPU time', 'Peak memory']);
    expect(rows[0].values).toEqual(['12 ms', '900 ms', '1.50 s', '1.3 min']);
    expect(rows[2]).toEqual({ measure: 'CPU time', count: 0, values: [] });
    expect(rows[3].values).toEqual(['9.0 MiB', '128.0 MiB', '128.0 MiB', '128.0 MiB']);
  });
  it('sums the chart up in one sentence', () => {
    expect(chartSummary(sample())).toMatch(/^Executions per hour, 3 hours from .+: 6 in all, the most \(5\) in the hour of .+\.$/);
    expect(chartSummary(sample({ buckets: [{ start: '2026-03-01T00:00:00Z', executions: 0 }] }))).toMatch(/: 0 in all\.$/);
  });
});

describe('StatsView', () => {
  it('shows totals, breakdowns with owner names, percentiles and a chart with its numbers', () => {
    render(StatsView, { stats: sample(), id: 's', ownerName: (id: string) => (id === 'u1' ? 'ada' : id) });
    expect(['executions', 'completed', 'failed', 'queued', 'running'].map((k) => screen.getByTestId(`s-${k}`).textContent)).toEqual(['6', '3', '2', '0', '1']);
    const reasons = screen.getByRole('table', { name: 'Failures by reason' });
    expect(within(reasons).getByRole('rowheader', { name: /time limit reached/ })).toBeTruthy();
    const owners = screen.getByRole('table', { name: 'By owner' });
    expect(within(owners).getAllByRole('row').map((r) => r.textContent)).toEqual(['OwnerExecutions', 'ada4', 'anonymous2']);
    const peak = screen.getByRole('rowheader', { name: 'Peak memory' }).closest('tr')!;
    expect([...peak.querySelectorAll('td')].map((td) => td.textContent)).toEqual(['5', '9.0 MiB', '128.0 MiB', '128.0 MiB', '128.0 MiB']);
    const chart = screen.getByRole('img');
    expect(chart.getAttribute('aria-label')).toContain('6 in all');
    expect(chart.querySelectorAll('rect.bar')).toHaveLength(3);
    const numbers = screen.getByRole('region', { name: 'Executions per hour' });
    expect(within(numbers).getAllByRole('row')).toHaveLength(4);
  });

  it('names the 10 busiest owners and sums up the rest in one row', () => {
    const by_owner = Object.fromEntries(Array.from({ length: 13 }, (_, i) => [`u${i}`, 20 - i]));
    render(StatsView, { stats: sample({ by_owner }), id: 's' });
    const rows = within(screen.getByRole('table', { name: 'By owner' })).getAllByRole('row');
    expect(rows).toHaveLength(12); // header, 10 owners, the rest
    expect(rows[1].textContent).toBe('u020');
    expect(rows[11].textContent).toBe('3 other owners27'); // 10 + 9 + 8 executions
  });

  it('compact: no breakdowns; a measure without runs says so', () => {
    render(StatsView, { stats: sample({ by_owner: undefined, wall_time_ms: { count: 0, p50: 0, p95: 0, p99: 0, max: 0 } }), id: 'm', compact: true });
    expect(screen.queryByRole('table', { name: 'Failures by reason' })).toBeNull();
    expect(screen.queryByRole('table', { name: 'By owner' })).toBeNull();
    expect(screen.getByRole('rowheader', { name: 'Wall time' }).closest('tr')!.textContent).toContain('no runs yet');
  });
});

describe('AdminOverview', () => {
  type Handler = (url: URL) => Response;
  function server(stats: Handler) {
    const asked: URL[] = [];
    vi.stubGlobal('fetch', async (input: RequestInfo | URL) => {
      const url = new URL(String(input), 'http://app.test');
      asked.push(url);
      if (url.pathname === '/api/v1/queue') return Response.json({ queued: 2, running: 1, at_least: false });
      if (url.pathname === '/api/v1/admin/users') return Response.json({ users: [{ id: 'u1', username: 'ada', role: 'user', created_at: '' }] });
      if (url.pathname === '/api/v1/stats') return stats(url);
      return new Response('{}', { status: 404 });
    });
    return asked;
  }

  it('shows the statistics of the range picked, owners by name', async () => {
    const asked = server((url) => Response.json(sample({ bucket: url.searchParams.get('bucket') as 'hour' | 'day' })));
    render(AdminOverview);
    await vi.waitFor(() => expect(screen.getByTestId('stats-completed').textContent).toBe('3'));
    expect(screen.getByTestId('queued').textContent).toBe('2');
    await vi.waitFor(() => expect(within(screen.getByRole('table', { name: 'By owner' })).getByRole('rowheader', { name: 'ada' })).toBeTruthy());
    const first = asked.filter((u) => u.pathname === '/api/v1/stats');
    expect(first.map((u) => u.searchParams.get('bucket'))).toEqual(['hour']);
    expect(first[0].searchParams.get('owner')).toBeNull();

    await fireEvent.change(screen.getByRole('combobox', { name: 'Range' }), { target: { value: '30d' } });
    await vi.waitFor(() => expect(screen.getByRole('region', { name: 'Executions per day' })).toBeTruthy());
    const last = asked.filter((u) => u.pathname === '/api/v1/stats').at(-1)!;
    expect(last.searchParams.get('bucket')).toBe('day');
    const days = (Date.parse(last.searchParams.get('to')!) - Date.parse(last.searchParams.get('from')!)) / 86400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('says when the statistics cannot be read, and still shows the queue', async () => {
    server(() => Response.json({ error: { code: 'unavailable', message: 'the views store is unavailable' } }, { status: 503 }));
    render(AdminOverview);
    await vi.waitFor(() => expect(screen.getByRole('alert').textContent).toBe('The statistics could not be read: the views store is unavailable'));
    expect(screen.getByTestId('queued').textContent).toBe('2');
    expect(screen.queryByTestId('stats-executions')).toBeNull();
  });
});
