// Components in jsdom: the names the tests and assistive technology rely
// on, and untrusted output staying text.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import AuthPage from '../src/pages/AuthPage.svelte';
import AnsiText from '../src/components/AnsiText.svelte';
import StatusLine from '../src/components/StatusLine.svelte';
import ResultPanel from '../src/components/ResultPanel.svelte';
import type { Live } from '../src/lib/run.svelte';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const base: Live = {
  status: 'queued',
  waitingForRunner: false,
  output: '',
  errors: '',
  exitCode: null,
  truncated: false,
  usage: null,
  timeoutMs: 5000,
  memoryBytes: 128 * 1024 * 1024,
  erased: false,
};

describe('AnsiText', () => {
  it('renders colours as classes and markup as text', () => {
    const { container } = render(AnsiText, { text: '\x1b[1;31m<img src=x onerror=alert(1)>\x1b[0m plain' });
    expect(container.querySelector('img')).toBeNull();
    const red = container.querySelector('span.ansi-fg-1.ansi-bold');
    expect(red?.textContent).toBe('<img src=x onerror=alert(1)>');
    expect(container.textContent).toBe('<img src=x onerror=alert(1)> plain');
  });
});

describe('StatusLine', () => {
  it('is a status named "Status" whose text holds the status word', () => {
    const cases: [Partial<Live>, string][] = [
      [{ status: 'queued', queuePosition: 3 }, 'queued (position 3 in the queue)'],
      [{ status: 'running' }, 'running'],
      [{ status: 'completed' }, 'completed'],
      [{ status: 'failed', failureReason: 'timeout' }, 'failed: time limit of 5.00 s reached'],
      [{ status: 'failed', failureReason: 'memory_limit' }, 'failed: memory limit of 128.0 MiB reached'],
      [{ status: 'failed', failureReason: 'cancelled' }, 'failed: cancelled'],
    ];
    for (const [over, text] of cases) {
      render(StatusLine, { live: { ...base, ...over } });
      expect(screen.getByRole('status', { name: 'Status' }).textContent?.trim()).toBe(text);
      cleanup();
    }
  });
});

describe('ResultPanel', () => {
  it('keeps stdout and stderr apart and names the exit code', () => {
    render(ResultPanel, {
      live: {
        ...base,
        status: 'failed',
        failureReason: 'runtime_error',
        output: 'to out\n',
        errors: 'Traceback: boom\n',
        exitCode: 1,
        usage: { wall_time_ms: 1530, cpu_time_ms: 20, peak_memory_bytes: 9 * 1024 * 1024 },
        truncated: true,
      },
    });
    expect(screen.getByRole('region', { name: 'Output' }).textContent).toContain('to out');
    expect(screen.getByRole('region', { name: 'Output' }).textContent).not.toContain('Traceback');
    expect(screen.getByRole('region', { name: 'Errors' }).textContent).toContain('Traceback: boom');
    expect(screen.getByLabelText('Exit code').textContent).toBe('1');
    expect(screen.getByText('1.53 s')).toBeTruthy();
    expect(screen.getByText('9.0 MiB')).toBeTruthy();
    expect(screen.getByRole('note').textContent).toContain('was cut');
  });

  it('shows a signal instead of an exit code', () => {
    render(ResultPanel, { live: { ...base, status: 'failed', failureReason: 'timeout', signal: 'SIGKILL' } });
    expect(screen.getByLabelText('Exit code').textContent).toBe('killed by SIGKILL');
  });
});

describe('AuthPage', () => {
  it("shows a refused password's reason verbatim as the Password field's description", async () => {
    const reason = 'password is too easy to guess: it contains the username; choose another';
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ error: { code: 'unprocessable', message: reason } }), { status: 422 }));
    render(AuthPage, { mode: 'sign-up' });
    const form = screen.getByRole('form', { name: 'Sign up' });
    await fireEvent.input(screen.getByRole('textbox', { name: 'Username' }), { target: { value: 'ada' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'ada ada ada ada ada' } });
    await fireEvent.submit(form);
    const password = screen.getByLabelText('Password');
    await vi.waitFor(() => expect(password.getAttribute('aria-invalid')).toBe('true'));
    expect(document.getElementById(password.getAttribute('aria-describedby')!)?.textContent).toBe(reason);
    expect(screen.getByRole('button', { name: 'Sign up' })).toBeTruthy();
  });

  it('puts a taken username by the Username field', async () => {
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ error: { code: 'conflict', message: 'username ada is taken' } }), { status: 409 }));
    render(AuthPage, { mode: 'sign-up' });
    await fireEvent.submit(screen.getByRole('form', { name: 'Sign up' }));
    const username = screen.getByRole('textbox', { name: 'Username' });
    await vi.waitFor(() => expect(username.getAttribute('aria-invalid')).toBe('true'));
    expect(document.getElementById(username.getAttribute('aria-describedby')!)?.textContent).toBe('username ada is taken');
  });
});
