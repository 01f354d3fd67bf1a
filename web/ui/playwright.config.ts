// The browser tests run Debian's chromium (deploy/host/setup.sh installs
// it; Playwright downloads no browser) against the real binary: `integr8scode
// up` with its embedded stores and the real runc sandbox, on a free port and
// a fresh data directory. Build the binary first (`go tool task build`).
import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// Workers load this file again; the port and directory chosen by the
// main process reach them through the environment.
async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
  });
}
process.env.I8S_E2E_PORT ??= String(await freePort());
process.env.I8S_E2E_DATA ??= mkdtempSync(join(tmpdir(), 'integr8scode-e2e-'));
const port = process.env.I8S_E2E_PORT;
const base = `http://127.0.0.1:${port}`;
const binary = resolve(import.meta.dirname, '../../bin/integr8scode');

export default defineConfig({
  testDir: 'e2e',
  // Two CPUs: runs share them with the sandboxes. One worker keeps timings
  // (a 1 s timeout, a cancel while running) honest.
  workers: 1,
  timeout: 60_000,
  expect: { timeout: 20_000 },
  retries: 0,
  reporter: [['list']],
  globalTeardown: './e2e/teardown.ts',
  use: {
    baseURL: base,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    permissions: ['clipboard-read', 'clipboard-write'],
    trace: 'retain-on-failure',
  },
  webServer: {
    // Every test submits from 127.0.0.1: the anonymous quota (20 a minute,
    // 2 at once per address by default) would refuse the later tests. The
    // history test submits 21 runs at once as one user (default: burst 20,
    // 8 at once); the quota test sets a user's own limits through the admin page.
    command: `${binary} up --listen 127.0.0.1:${port} --data-dir ${process.env.I8S_E2E_DATA} --slots 2 --output-cap-bytes 65536 --log-level warn --quota-anonymous per-minute=10000,burst=1000,concurrent=100 --quota-user per-minute=10000,burst=1000,concurrent=100`,
    url: `${base}/readyz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
