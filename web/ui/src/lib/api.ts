// The API client: one function per call the pages make, errors as
// ApiError with the server's {"error":{"code","message"}}.

import { parseStrict, isObject, type JSONValue } from './json';
import type { Stats, StatsQuery } from './stats';
import { sessionFetch, noteSession, forgetSession, retryAfterSeconds, inWords } from './auth';

export type Status = 'queued' | 'running' | 'completed' | 'failed';

export interface Limits {
  timeout_ms: number;
  memory_bytes: number;
  cpu_millicores: number;
}

export interface ResourceUsage {
  wall_time_ms: number;
  cpu_time_ms: number;
  peak_memory_bytes: number;
}

export interface Execution {
  execution_id: string;
  status: Status;
  language: string;
  version: string;
  script: string;
  stdin: string;
  owner: string;
  limits: Limits;
  output: string;
  errors: string;
  exit_code: number | null;
  signal?: string;
  failure_reason?: string;
  output_truncated: boolean;
  resource_usage: ResourceUsage | null;
  attempt: number;
  runner?: string;
  version_seq: number;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  queue_position?: number;
  /** The content (script, stdin, output, errors) was erased: those are empty for good. */
  erased: boolean;
  erased_at?: string;
}

export interface Runtimes {
  runtimes: { language: string; versions: string[]; default_version: string; file_extension: string }[];
  default_limits: Limits;
  max_limits: Limits;
}

export interface EventsPage {
  execution_id: string;
  /** The records as the server sent them, read strictly (see json.ts). */
  records: JSONValue[];
  /** What the server says it verified; shown beside, never trusted. */
  serverChainValid: boolean;
}

export interface UserLimits {
  submissions_per_minute: number;
  burst: number;
  concurrent: number;
}

export interface User {
  id: string;
  username: string;
  role: 'user' | 'admin';
  created_at: string;
  /** Admin views only. */
  disabled?: boolean;
  /** The limits in force. */
  limits?: UserLimits;
}

export interface APIToken {
  id: string;
  name: string;
  created_at: string;
  expires_at: string | null;
  /** The secret: only in the answer that created the token. */
  token?: string;
}

export interface QueueFigures {
  queued: number;
  running: number;
  at_least: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from Retry-After (429 and 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/**
 * The server's message as it words it (a weak password's reason is shown
 * verbatim), and for 429 and 503 when to try again, in words: "you
 * submitted 60 executions in the last minute, the most allowed; retry
 * shortly. Try again in 12 seconds."
 */
export function errorMessage(status: number, message: string, retryAfter?: number): string {
  if ((status !== 429 && status !== 503) || retryAfter === undefined) return message;
  const m = message.trim();
  return `${m}${m && !/[.!?]$/.test(m) ? '.' : ''} Try again ${inWords(retryAfter)}.`.trim();
}

async function errorFrom(resp: Response, text: string, fallbackCode: string): Promise<ApiError> {
  let code = fallbackCode;
  let message = `The server answered ${resp.status} ${resp.statusText}.`;
  try {
    const e = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (e.error?.message) message = e.error.message;
    if (e.error?.code) code = e.error.code;
  } catch {
    // not a JSON error: keep the status line
  }
  const retry = retryAfterSeconds(resp.headers.get('Retry-After'));
  return new ApiError(resp.status, code, errorMessage(resp.status, message, retry), retry);
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  let resp: Response;
  try {
    resp = await sessionFetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  const text = await resp.text();
  if (!resp.ok) throw await errorFrom(resp, text, 'http_' + resp.status);
  return (text ? JSON.parse(text) : undefined) as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface SubmitRequest {
  script: string;
  stdin?: string;
  language?: string;
  version?: string;
  limits?: Partial<Limits>;
}

export const api = {
  runtimes: () => call<Runtimes>('GET', '/api/v1/runtimes'),
  submit: (req: SubmitRequest) => call<Execution>('POST', '/api/v1/executions', req),
  get: (id: string) => call<Execution>('GET', `/api/v1/executions/${encodeURIComponent(id)}`),
  cancel: (id: string) => call<Execution>('POST', `/api/v1/executions/${encodeURIComponent(id)}/cancel`),
  /** Erases an ended execution's script, stdin and output for good. */
  eraseContent: (id: string) =>
    call<{ execution_id: string; erased: boolean; recorded_in_the_clear: boolean }>(
      'DELETE',
      `/api/v1/executions/${encodeURIComponent(id)}/content`,
    ),
  /** The caller's executions (an admin's: everyone's, or one owner's), newest first. */
  list: (params: { limit?: number; cursor?: string; status?: string; owner?: string }) =>
    call<{ executions: Execution[]; next_cursor?: string }>('GET', `/api/v1/executions${query(params)}`),
  queue: () => call<QueueFigures>('GET', '/api/v1/queue'),
  /** Statistics of the executions submitted in [from, to): the caller's own, an admin's everyone's (or one owner's). */
  stats: (q: StatsQuery) => call<Stats>('GET', `/api/v1/stats${query({ ...q })}`),
  ledgerKeys: () => call<JSONValue>('GET', '/api/v1/ledger/keys'),

  /** The events, with each record read by the strict reader rather than JSON.parse. */
  async events(id: string): Promise<EventsPage> {
    let resp: Response;
    try {
      resp = await sessionFetch(`/api/v1/executions/${encodeURIComponent(id)}/events`, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
      });
    } catch {
      throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
    }
    const text = await resp.text();
    if (!resp.ok) throw await errorFrom(resp, text, 'events');
    const doc = parseStrict(text, { markRepeated: true });
    if (!isObject(doc) || !Array.isArray(doc.events)) throw new ApiError(resp.status, 'events', 'The events answer is not a list of events.');
    return {
      execution_id: String(doc.execution_id ?? ''),
      records: doc.events.map((e) => (isObject(e) ? (e.record ?? null) : null)),
      serverChainValid: doc.chain_valid === true,
    };
  },

  // Accounts (issue 10's contract).
  me: () => call<User>('GET', '/api/v1/auth/me'),
  register: (username: string, password: string) => call<{ user: User }>('POST', '/api/v1/auth/register', { username, password }),
  async login(username: string, password: string) {
    const t = await call<{ expires_in: number }>('POST', '/api/v1/auth/login', { username, password });
    noteSession(t.expires_in);
    return t;
  },
  async logout() {
    try {
      await call<unknown>('POST', '/api/v1/auth/logout');
    } finally {
      forgetSession();
    }
  },
  tokens: () => call<{ tokens: APIToken[] }>('GET', '/api/v1/auth/tokens'),
  createToken: (name: string, expiresIn?: number) =>
    call<APIToken>('POST', '/api/v1/auth/tokens', expiresIn ? { name, expires_in: expiresIn } : { name }),
  revokeToken: (id: string) => call<unknown>('DELETE', `/api/v1/auth/tokens/${encodeURIComponent(id)}`),

  saveScript: (s: ScriptFields) => call<SavedScript>('POST', '/api/v1/scripts', s),
  updateScript: (id: string, s: ScriptFields) => call<SavedScript>('PUT', `/api/v1/scripts/${encodeURIComponent(id)}`, s),
  scripts: (cursor?: string) => call<{ scripts: SavedScript[]; next_cursor?: string }>('GET', `/api/v1/scripts${query({ cursor })}`),
  script: (id: string) => call<SavedScript>('GET', `/api/v1/scripts/${encodeURIComponent(id)}`),
  /** PUT replaces the whole script: send every field back with the new name. */
  renameScript: (s: SavedScript, name: string) =>
    call<SavedScript>('PUT', `/api/v1/scripts/${encodeURIComponent(s.id)}`, {
      name,
      script: s.script,
      stdin: s.stdin ?? '',
      language: s.language || undefined,
      version: s.version || undefined,
    }),
  deleteScript: (id: string) => call<unknown>('DELETE', `/api/v1/scripts/${encodeURIComponent(id)}`),

  // Administration (role admin).
  users: (cursor?: string) => call<{ users: User[]; next_cursor?: string }>('GET', `/api/v1/admin/users${query({ limit: 100, cursor })}`),
  /** Every account (pages of 100, at most 5000), for owner names. */
  async allUsers(): Promise<User[]> {
    const all: User[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 50; i++) {
      const page = await api.users(cursor);
      all.push(...page.users);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    return all;
  },
  patchUser: (id: string, patch: { role?: 'user' | 'admin'; disabled?: boolean; limits?: UserLimits | null }) =>
    call<User>('PATCH', `/api/v1/admin/users/${encodeURIComponent(id)}`, patch),
};

export interface ScriptFields {
  name: string;
  script: string;
  stdin?: string;
  language?: string;
  version?: string;
}

export interface SavedScript {
  id: string;
  name: string;
  script: string;
  stdin?: string;
  language?: string;
  version?: string;
  created_at?: string;
  updated_at?: string;
}
