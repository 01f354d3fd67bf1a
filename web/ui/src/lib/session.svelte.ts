// Who is signed in, from GET /api/v1/auth/me (issue 10's contract). A
// server without accounts answers 404 there: the app then says accounts
// are not available rather than pretending to sign anyone in.

import { api, ApiError, type User } from './api';

export type SessionState =
  | { kind: 'loading' }
  | { kind: 'anonymous' } // accounts exist, nobody signed in
  | { kind: 'signed-in'; user: User }
  | { kind: 'unavailable'; message: string }; // this server has no accounts

class Session {
  state = $state<SessionState>({ kind: 'loading' });

  async refresh() {
    try {
      this.state = { kind: 'signed-in', user: await api.me() };
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.state = { kind: 'anonymous' };
      else if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
        this.state = { kind: 'unavailable', message: 'This server does not offer accounts yet: everyone runs scripts anonymously.' };
      } else this.state = { kind: 'unavailable', message: (e as Error).message };
    }
  }

  async signOut() {
    try {
      await api.logout();
    } finally {
      await this.refresh();
    }
  }
}

export const session = new Session();
