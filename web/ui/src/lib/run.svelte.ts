// Follows one execution live: its ledger events from the SSE stream
// (GET /api/v1/executions/{id}/stream) move the status, and while it waits
// in the queue GET /api/v1/executions/{id} tells its place. The terminal
// event carries the result with its output sealed (only the server opens
// it, for whoever may read it), so the view is read the moment the run ends.

import { api, ApiError, type Execution, type ResourceUsage, type Status } from './api';
import { ensureFresh } from './auth';

export const EVENT_TYPES = [
  'ExecutionQueued',
  'ExecutionStarted',
  'ExecutionAbandoned',
  'ExecutionResumed',
  'ExecutionCompleted',
  'ExecutionFailed',
  'ExecutionErased',
] as const;

interface ResultData {
  verdict?: string;
  exit_code?: number;
  signal?: string;
  stdout?: string;
  stderr?: string;
  output_truncated?: boolean;
  resource_usage?: ResourceUsage;
  message?: string;
}

export interface Live {
  status: Status;
  queuePosition?: number;
  waitingForRunner: boolean; // the runner of the attempt stopped; another will take it
  output: string;
  errors: string;
  exitCode: number | null;
  signal?: string;
  failureReason?: string;
  message?: string;
  truncated: boolean;
  usage: ResourceUsage | null;
  timeoutMs?: number;
  memoryBytes?: number;
  /** The content was erased (ExecutionErased). */
  erased: boolean;
}

export function liveFrom(e: Execution): Live {
  return {
    status: e.status,
    queuePosition: e.queue_position,
    waitingForRunner: false,
    output: e.output ?? '',
    errors: e.errors ?? '',
    exitCode: e.exit_code ?? null,
    signal: e.signal,
    failureReason: e.failure_reason,
    truncated: e.output_truncated,
    usage: e.resource_usage,
    timeoutMs: e.limits?.timeout_ms,
    memoryBytes: e.limits?.memory_bytes,
    erased: !!e.erased,
  };
}

/** Applies one ledger event to what the page shows. */
export function applyEvent(live: Live, type: string, data: Record<string, unknown>): Live {
  const next = { ...live };
  const result = (data.result ?? undefined) as ResultData | undefined;
  const takeResult = () => {
    if (!result) return;
    // Since schema version 2 the output is sealed (result.output): the
    // view, read when the run ends, has it opened.
    if (result.stdout !== undefined || result.stderr !== undefined) {
      next.output = result.stdout ?? '';
      next.errors = result.stderr ?? '';
    }
    next.exitCode = result.exit_code ?? null;
    next.signal = result.signal;
    next.truncated = !!result.output_truncated;
    next.usage = result.resource_usage ?? null;
    if (result.message) next.message = result.message;
  };
  switch (type) {
    case 'ExecutionQueued':
      next.status = 'queued';
      break;
    case 'ExecutionStarted':
    case 'ExecutionResumed':
      next.status = 'running';
      next.queuePosition = undefined;
      next.waitingForRunner = false;
      break;
    case 'ExecutionAbandoned':
      next.waitingForRunner = true;
      break;
    case 'ExecutionCompleted':
      next.status = 'completed';
      next.queuePosition = undefined;
      takeResult();
      break;
    case 'ExecutionFailed':
      next.status = 'failed';
      next.queuePosition = undefined;
      next.failureReason = String(data.reason ?? '');
      if (typeof data.message === 'string' && data.message) next.message = data.message;
      takeResult();
      break;
    case 'ExecutionErased':
      next.erased = true;
      next.output = '';
      next.errors = '';
      break;
  }
  return next;
}

export function terminal(s: Status | undefined): boolean {
  return s === 'completed' || s === 'failed';
}

export class RunWatch {
  live = $state<Live | null>(null);
  error = $state('');
  /** Bumped on every ledger event, so a timeline can reload. */
  events = $state(0);
  private source: EventSource | null = null;
  private poll: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    readonly id: string,
    initial?: Execution,
  ) {
    if (initial) this.live = liveFrom(initial);
  }

  async start() {
    this.closed = false;
    // EventSource cannot refresh a session by itself: an ended access
    // cookie would make the stream anonymous (404 for a user's own run).
    await ensureFresh();
    if (this.closed) return;
    const es = new EventSource(`/api/v1/executions/${encodeURIComponent(this.id)}/stream`);
    this.source = es;
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (ev) => this.onEvent(type, (ev as MessageEvent<string>).data));
    }
    es.onerror = () => {
      // EventSource reconnects by itself (with Last-Event-ID); once it gives
      // up, or the server ended the stream, the view is read instead.
      if (es.readyState === EventSource.CLOSED && !terminal(this.live?.status)) this.schedulePoll(0);
    };
    this.schedulePoll(0);
  }

  private onEvent(type: string, data: string) {
    let record: { data?: Record<string, unknown> };
    try {
      record = JSON.parse(data);
    } catch {
      return;
    }
    const base = this.live ?? liveFrom({ status: 'queued' } as Execution);
    this.live = applyEvent(base, type, record.data ?? {});
    this.events++;
    if (type === 'ExecutionQueued' && record.data && typeof record.data.limits === 'object' && record.data.limits) {
      const l = record.data.limits as { timeout_ms?: number; memory_bytes?: number };
      this.live = { ...this.live, timeoutMs: l.timeout_ms, memoryBytes: l.memory_bytes };
    }
    if (terminal(this.live.status) && this.source) {
      this.source.close();
      this.source = null;
      void this.readEnded();
    }
  }

  // The ended execution as the server opened it: its output.
  private async readEnded() {
    try {
      const e = await api.get(this.id);
      if (!this.closed && terminal(e.status)) this.live = liveFrom(e);
    } catch {
      // The event's figures stay; the output shows on the next load.
    }
  }

  // Reads the view while the execution waits in the queue (for its place)
  // or when the stream is gone.
  private schedulePoll(delay: number) {
    if (this.poll) clearTimeout(this.poll);
    this.poll = setTimeout(() => this.readView(), delay);
  }

  private async readView() {
    if (this.closed) return;
    try {
      const e = await api.get(this.id);
      if (this.closed) return;
      const fresh = liveFrom(e);
      const cur = this.live;
      if (!cur || (terminal(fresh.status) && !terminal(cur.status))) this.live = fresh;
      else if (cur.status === 'queued' && fresh.status === 'queued') this.live = { ...cur, queuePosition: fresh.queuePosition };
      this.error = '';
    } catch (err) {
      this.error = err instanceof ApiError ? err.message : String(err);
      if (err instanceof ApiError && err.status === 404) return;
    }
    const s = this.live?.status;
    if (s === 'queued' || (!terminal(s) && !this.source)) this.schedulePoll(1000);
  }

  stop() {
    this.closed = true;
    this.source?.close();
    this.source = null;
    if (this.poll) clearTimeout(this.poll);
  }
}
