// Who is signed in, from GET /api/v1/auth/me: 401 means nobody (after the
// client tried to refresh an expired session once, lib/auth.ts). Anything
// else that fails (the server is unreachable) is said as such, rather than
// pretending nobody is signed in.

import { api, ApiError, type User } from './api';
import { onSessionEnded } from './auth';

export type SessionState =
  | { kind: 'loading' }
  | { kind: 'anonymous' }
  | { kind: 'signed-in'; user: User }
  | { kind: 'unavailable'; message: string };

class Session {
  state = $state<SessionState>({ kind: 'loading' });

  constructor() {
    // A refused refresh (the sign-in ended elsewhere, or was revoked).
    onSessionEnded(() => {
      if (this.state.kind === 'signed-in') this.state = { kind: 'anonymous' };
    });
  }

  get user(): User | null {
    return this.state.kind === 'signed-in' ? this.state.user : null;
  }

  get isAdmin(): boolean {
    return this.user?.role === 'admin';
  }

  async refresh() {
    try {
      this.state = { kind: 'signed-in', user: await api.me() };
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.state = { kind: 'anonymous' };
      else this.state = { kind: 'unavailable', message: `Could not tell who is signed in: ${(e as Error).message}` };
    }
  }

  /** Ends the sign-in on the server (its tokens stop working at once). */
  async signOut() {
    try {
      await api.logout();
      this.state = { kind: 'anonymous' };
    } catch {
      await this.refresh(); // the server did not answer: say what holds
    }
  }
}

export const session = new Session();
