// The API client: one function per call the pages make, errors as
// ApiError with the server's {"error":{"code","message"}}.

import { parseStrict, isObject, type JSONValue } from './json';

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

export interface User {
  id: string;
  username: string;
  role: string;
  created_at: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  let resp: Response;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  const text = await resp.text();
  if (!resp.ok) {
    let code = 'http_' + resp.status;
    let message = `The server answered ${resp.status} ${resp.statusText}.`;
    try {
      const e = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (e.error?.message) message = e.error.message;
      if (e.error?.code) code = e.error.code;
    } catch {
      // not a JSON error: keep the status line
    }
    throw new ApiError(resp.status, code, message);
  }
  return (text ? JSON.parse(text) : undefined) as T;
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
  list: (params: { limit?: number; cursor?: string; status?: string }) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
    return call<{ executions: Execution[]; next_cursor?: string }>('GET', `/api/v1/executions?${q}`);
  },
  ledgerKeys: () => call<JSONValue>('GET', '/api/v1/ledger/keys'),

  /** The events, with each record read by the strict reader rather than JSON.parse. */
  async events(id: string): Promise<EventsPage> {
    const resp = await fetch(`/api/v1/executions/${encodeURIComponent(id)}/events`, { headers: { Accept: 'application/json' } });
    const text = await resp.text();
    if (!resp.ok) {
      let message = `The server answered ${resp.status}.`;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message || message;
      } catch {
        // keep the status
      }
      throw new ApiError(resp.status, 'events', message);
    }
    const doc = parseStrict(text, { markRepeated: true });
    if (!isObject(doc) || !Array.isArray(doc.events)) throw new ApiError(resp.status, 'events', 'The events answer is not a list of events.');
    return {
      execution_id: String(doc.execution_id ?? ''),
      records: doc.events.map((e) => (isObject(e) ? (e.record ?? null) : null)),
      serverChainValid: doc.chain_valid === true,
    };
  },

  // Accounts (issue 10's contract). A server without accounts answers 404.
  me: () => call<User>('GET', '/api/v1/auth/me'),
  register: (username: string, password: string) => call<{ user: User }>('POST', '/api/v1/auth/register', { username, password }),
  login: (username: string, password: string) => call<unknown>('POST', '/api/v1/auth/login', { username, password }),
  logout: () => call<unknown>('POST', '/api/v1/auth/logout'),
  saveScript: (s: { name: string; script: string; stdin?: string }) =>
    call<{ id: string; name: string }>('POST', '/api/v1/scripts', s),
  scripts: (cursor?: string) =>
    call<{ scripts: SavedScript[]; next_cursor?: string }>('GET', '/api/v1/scripts' + (cursor ? `?cursor=${encodeURIComponent(cursor)}` : '')),
  script: (id: string) => call<SavedScript>('GET', `/api/v1/scripts/${encodeURIComponent(id)}`),
  renameScript: (s: SavedScript, name: string) =>
    call<SavedScript>('PUT', `/api/v1/scripts/${encodeURIComponent(s.id)}`, { ...s, name }),
  deleteScript: (id: string) => call<unknown>('DELETE', `/api/v1/scripts/${encodeURIComponent(id)}`),
};

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
