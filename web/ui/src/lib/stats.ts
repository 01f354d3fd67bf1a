// GET /api/v1/stats: its answer (projections/stats.go), the ranges the
// pages offer, and the figures in words. No request here: api.stats.

import { bytes } from './format';

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface Stats {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  executions: number;
  by_status: Record<string, number>;
  by_failure_reason: Record<string, number>;
  /** "python 3.11" */
  by_runtime: Record<string, number>;
  /** Admins, without ?owner=: user ids, and "anonymous". */
  by_owner?: Record<string, number>;
  queue_wait_ms: Percentiles;
  wall_time_ms: Percentiles;
  cpu_time_ms: Percentiles;
  peak_memory_bytes: Percentiles;
  buckets: { start: string; executions: number }[];
}

export interface StatsQuery {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  owner?: string;
}

export type RangeId = '24h' | '7d' | '30d';

export const RANGES: { id: RangeId; label: string }[] = [
  { id: '24h', label: 'Last 24 hours, by hour' },
  { id: '7d', label: 'Last 7 days, by day' },
  { id: '30d', label: 'Last 30 days, by day' },
];

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/**
 * The query of a range ending now. Buckets are aligned to UTC by the
 * server; the range starts on a bucket's edge, so that every bucket shown
 * is whole but the current one: 24 hours (this one and the 23 before), or
 * 7 or 30 UTC days (today and the ones before).
 */
export function rangeQuery(id: RangeId, now = new Date()): StatsQuery {
  const t = now.getTime();
  const [bucket, size, n] = id === '24h' ? (['hour', HOUR, 24] as const) : (['day', DAY, id === '7d' ? 7 : 30] as const);
  const from = Math.floor(t / size) * size - (n - 1) * size;
  return { from: new Date(from).toISOString(), to: new Date(t).toISOString(), bucket };
}

/** A count map as rows, largest first (then by name). */
export function ranked(counts: Record<string, number> | undefined): [string, number][] {
  return Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** A duration in milliseconds, in the unit a person reads it in. */
export function duration(msec: number): string {
  if (msec < 1000) return `${msec} ms`;
  if (msec < 60_000) return `${(msec / 1000).toFixed(2)} s`;
  if (msec < 3600_000) return `${(msec / 60_000).toFixed(1)} min`;
  return `${(msec / 3600_000).toFixed(1)} h`;
}

export interface PercentileRow {
  measure: string;
  count: number;
  /** p50, p95, p99, max in words; empty when no execution has the measure. */
  values: string[];
}

/** The four measures as table rows: queue wait, wall time, CPU time, peak memory. */
export function percentileRows(s: Stats): PercentileRow[] {
  const rows: [string, Percentiles | undefined, (n: number) => string][] = [
    ['Queue wait', s.queue_wait_ms, duration],
    ['Wall time', s.wall_time_ms, duration],
    ['CPU time', s.cpu_time_ms, duration],
    ['Peak memory', s.peak_memory_bytes, bytes],
  ];
  return rows.map(([measure, p, unit]) => ({
    measure,
    count: p?.count ?? 0,
    values: p && p.count > 0 ? [p.p50, p.p95, p.p99, p.max].map(unit) : [],
  }));
}

/** A bucket's start as a label: local hour for hours, the UTC date for days (the server's days are UTC). */
export function bucketLabel(start: string, bucket: 'hour' | 'day', long = false): string {
  const d = new Date(start);
  if (Number.isNaN(d.getTime())) return start;
  if (bucket === 'day')
    return d.toLocaleDateString(undefined, long ? { timeZone: 'UTC', dateStyle: 'medium' } : { timeZone: 'UTC', day: 'numeric', month: 'short' });
  return long
    ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
    : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** The chart in one sentence, for assistive technology. */
export function chartSummary(s: Stats): string {
  const per = s.bucket === 'day' ? 'day' : 'hour';
  if (s.buckets.length === 0) return `No ${per}s in this range.`;
  let top = s.buckets[0];
  for (const b of s.buckets) if (b.executions > top.executions) top = b;
  const total = s.buckets.reduce((n, b) => n + b.executions, 0);
  const head = `Executions per ${per}, ${s.buckets.length} ${per}s from ${bucketLabel(s.buckets[0].start, s.bucket, true)}: ${total} in all`;
  return top.executions === 0 ? `${head}.` : `${head}, the most (${top.executions}) in the ${per} of ${bucketLabel(top.start, s.bucket, true)}.`;
}
