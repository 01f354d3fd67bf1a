import { rmSync } from 'node:fs';

// The server has stopped by now (Playwright stops webServer first): remove
// its data directory.
export default function teardown() {
  const dir = process.env.I8S_E2E_DATA;
  if (dir && dir.includes('integr8scode-e2e-')) rmSync(dir, { recursive: true, force: true });
}
