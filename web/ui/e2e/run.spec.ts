// Running scripts from the editor page against the real platform.
import { readFileSync } from 'node:fs';
import { test, expect, setScript, statusOf } from './fixtures';

test.beforeEach(async ({ page }) => {
  await page.goto('/');
  await page.evaluate(() => localStorage.clear());
  await page.reload();
});

test('hello: output, exit code 0, usage', async ({ page }) => {
  await setScript(page, 'print("hello, browser")\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('completed');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('hello, browser');
  await expect(page.getByLabel('Exit code')).toHaveText('0');
  await expect(page.getByText('Wall time').locator('..')).toContainText(/\d+(\.\d+)? m?s/);
  await expect(page.getByText('Peak memory').locator('..')).toContainText(/(KiB|MiB)/);
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeDisabled();
});

test('stdin reaches the script; stderr and a non-zero exit are apart', async ({ page }) => {
  await setScript(page, 'import sys\nname = sys.stdin.readline().strip()\nprint("hi", name)\nprint("to stderr", file=sys.stderr)\nsys.exit(3)\n');
  await page.getByRole('textbox', { name: 'Stdin' }).fill('Ada\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('failed');
  await expect(statusOf(page)).toContainText('exited with an error');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('hi Ada');
  await expect(page.getByRole('region', { name: 'Output' })).not.toContainText('to stderr');
  await expect(page.getByRole('region', { name: 'Errors' })).toContainText('to stderr');
  await expect(page.getByLabel('Exit code')).toHaveText('3');
});

test('Ctrl+Enter runs, ANSI colours render as styled text, never as markup', async ({ page }) => {
  await setScript(page, 'print("\\033[31mred\\033[0m <b>not bold</b>")\n');
  await page.keyboard.press('Control+Enter');
  await expect(statusOf(page)).toContainText('completed');
  const out = page.getByRole('region', { name: 'Output' });
  await expect(out.locator('span.ansi-fg-1')).toHaveText('red');
  await expect(out).toContainText('<b>not bold</b>');
  await expect(out.locator('b')).toHaveCount(0);
});

test('an infinite loop stops at the time limit set in the limits panel', async ({ page }) => {
  await setScript(page, 'while True:\n    pass\n');
  await page.getByText('Limits').click();
  await page.getByLabel('Timeout (seconds)').fill('1');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText(/queued|running/);
  await expect(statusOf(page)).toContainText('failed: time limit of 1.00 s reached');
  await expect(page.getByLabel('Exit code')).toContainText(/killed by SIG|none/);
});

test('a limit above the maximum is refused before it is sent', async ({ page }) => {
  await page.getByText('Limits').click();
  await page.getByLabel('Memory (MiB)').fill('100000');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(page.getByRole('alert')).toContainText('Memory may be at most 512 MiB');
});

test('a memory bomb stops at the memory limit', async ({ page }) => {
  await setScript(page, 'chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('failed: memory limit of 128.0 MiB reached');
});

test('cancel while running', async ({ page }) => {
  await setScript(page, 'import time\nprint("started", flush=True)\ntime.sleep(25)\n');
  await page.getByText('Limits').click();
  await page.getByLabel('Timeout (seconds)').fill('30');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('running');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(statusOf(page)).toContainText('failed: cancelled', { timeout: 15_000 });
  await expect(page.getByRole('button', { name: 'Run' })).toBeEnabled();
});

test('output beyond the cap is shown as truncated', async ({ page }) => {
  // The test server caps each stream at 64 KiB and runs 2 sandboxes at once (playwright.config.ts).
  await setScript(page, 'print("x" * 200_000)\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText(/completed|failed/);
  await expect(page.getByRole('note')).toContainText('was cut');
});

test('the draft survives a reload; examples, download and upload', async ({ page }) => {
  await setScript(page, 'print("keep me")\n');
  await page.getByRole('textbox', { name: 'Stdin' }).fill('some input');
  await page.waitForTimeout(500); // the draft is written 300 ms after the last change
  await page.reload();
  await expect(page.locator('.cm-content')).toContainText('print("keep me")');
  await expect(page.getByRole('textbox', { name: 'Stdin' })).toHaveValue('some input');

  await page.getByLabel('Examples').selectOption('Read standard input');
  await expect(page.locator('.cm-content')).toContainText('sys.stdin');
  await expect(page.getByRole('textbox', { name: 'Stdin' })).toHaveValue('first line\nsecond line\n');

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download .py' }).click();
  const file = await (await download).path();
  expect(readFileSync(file, 'utf8')).toContain('for n, line in enumerate(sys.stdin, 1):');

  await page.getByLabel('Open .py').setInputFiles({ name: 'mine.py', mimeType: 'text/x-python', buffer: Buffer.from('print(6 * 7)\n') });
  await expect(page.locator('.cm-content')).toContainText('print(6 * 7)');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('42');
});

test('copy buttons put the output on the clipboard', async ({ page }) => {
  await setScript(page, 'print("\\033[32mcopy me\\033[0m")\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('completed');
  await page.getByRole('button', { name: 'Copy output' }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('copy me\n');
});

test('queued behind busy sandboxes: the queue position shows, and cancel works while queued', async ({ page, request }) => {
  // The test server runs two sandboxes at once: fill both.
  const busy: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await request.post('/api/v1/executions', { data: { script: 'import time\ntime.sleep(20)\n', limits: { timeout_ms: 25000 } } });
    expect(r.status()).toBe(202);
    busy.push((await r.json()).execution_id);
  }
  try {
    for (const id of busy) {
      await expect.poll(async () => (await (await request.get(`/api/v1/executions/${id}`)).json()).status).toBe('running');
    }
    await setScript(page, 'print("waited")\n');
    await page.getByRole('button', { name: 'Run' }).click();
    await expect(statusOf(page)).toContainText('queued (position 1 in the queue)');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect(statusOf(page)).toContainText('failed: cancelled');
    await expect(page.getByLabel('Exit code')).toContainText('none');
  } finally {
    for (const id of busy) await request.post(`/api/v1/executions/${id}/cancel`);
  }
});
