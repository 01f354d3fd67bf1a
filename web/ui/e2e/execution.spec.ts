// The permalink page and its event timeline, verified in the browser.
import { test, expect, setScript, statusOf } from './fixtures';
import type { Page } from '@playwright/test';

async function runToPermalink(page: Page, script: string, stdin = ''): Promise<string> {
  await page.goto('/');
  await setScript(page, script);
  if (stdin) await page.getByRole('textbox', { name: 'Stdin' }).fill(stdin);
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText(/completed|failed/);
  await page.getByRole('link', { name: 'Permalink' }).click();
  await expect(page).toHaveURL(/\/executions\/[0-9a-f-]{36}$/);
  return page.url();
}

test('the permalink shows script, stdin, output, verdict and usage, and the timeline verifies', async ({ page }) => {
  const url = await runToPermalink(page, 'import sys\nprint(sys.stdin.read().upper())\n', 'shout\n');
  // Loaded afresh from the address alone, as someone who got the link.
  await page.goto(url);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Execution');
  await expect(page.getByRole('region', { name: 'Script text' })).toContainText('print(sys.stdin.read().upper())');
  await expect(page.getByRole('region', { name: 'Stdin text' })).toContainText('shout');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('SHOUT');
  await expect(statusOf(page)).toContainText('completed');
  await expect(page.getByLabel('Exit code')).toHaveText('0');
  const verdict = page.getByTestId('chain-verdict');
  await expect(verdict).toContainText('Verified in this browser: 3 events');
  await expect(verdict).toHaveClass(/good/);
  const rows = page.getByRole('region', { name: 'Events' }).getByRole('row');
  await expect(rows).toHaveCount(4); // header + Queued, Started, Completed
  await expect(rows.nth(1)).toContainText('Queued');
  await expect(rows.nth(1)).toContainText('anonymous');
  await expect(rows.nth(2)).toContainText('Started');
  await expect(rows.nth(2)).toContainText('runner');
  await expect(rows.nth(3)).toContainText('Completed');
  for (const i of [1, 2, 3]) await expect(rows.nth(i)).toContainText('verified');
});

test('a tampered event served by the events endpoint shows red', async ({ page }) => {
  const url = await runToPermalink(page, 'print("genuine")\n');
  // Only the events endpoint is doubled: everything else is the real server.
  await page.route('**/api/v1/executions/*/events', async (route) => {
    const resp = await route.fetch();
    const doc = await resp.json();
    doc.events[0].record.data.language = 'forged'; // the script itself is sealed
    await route.fulfill({ response: resp, json: doc });
  });
  await page.goto(url);
  const verdict = page.getByTestId('chain-verdict');
  await expect(verdict).toContainText('Not verified');
  await expect(verdict).toHaveClass(/bad/);
  const rows = page.getByRole('region', { name: 'Events' }).getByRole('row');
  await expect(rows.nth(1)).toContainText('altered: its hash does not match its content');
});

test('a signature from another key shows red too', async ({ page }) => {
  const url = await runToPermalink(page, 'print("signed")\n');
  await page.route('**/api/v1/executions/*/events', async (route) => {
    const resp = await route.fetch();
    const doc = await resp.json();
    const last = doc.events[doc.events.length - 1].record;
    last.signature = doc.events[0].record.signature; // a real signature, of another event
    await route.fulfill({ response: resp, json: doc });
  });
  await page.goto(url);
  await expect(page.getByTestId('chain-verdict')).toContainText('Not verified');
  await expect(page.getByRole('region', { name: 'Events' }).getByRole('row').last()).toContainText('signature does not verify');
});

test('erasing the content keeps a verified record without it', async ({ page }) => {
  const url = await runToPermalink(page, 'print("erase me")\n', 'private\n');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('erase me');
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Erase content' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'was erased' })).toBeVisible();
  // Loaded afresh: the server says erased, and nothing of the content is left.
  await page.goto(url);
  await expect(page.getByRole('status').filter({ hasText: 'was erased' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Script text' })).toHaveCount(0);
  await expect(page.getByText('erase me')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Edit and run again' })).toHaveCount(0);
  const rows = page.getByRole('region', { name: 'Events' }).getByRole('row');
  await expect(rows).toHaveCount(5); // header + Queued, Started, Completed, Erased
  await expect(rows.nth(4)).toContainText('Erased');
  await expect(page.getByTestId('chain-verdict')).toContainText('Verified in this browser: 4 events');
});

test('edit and run again puts the script back in the editor', async ({ page }) => {
  await runToPermalink(page, 'print("again")\n', 'in\n');
  await page.getByRole('button', { name: 'Edit and run again' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('.cm-content')).toContainText('print("again")');
  await expect(page.getByRole('textbox', { name: 'Stdin' })).toHaveValue('in\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('again');
});

test('an unknown execution says so', async ({ page }) => {
  await page.goto('/executions/0193a1c2-0000-7000-8000-000000000000');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Execution not found');
  await expect(page.getByRole('alert')).toContainText('There is no execution with the id 0193a1c2-0000-7000-8000-000000000000 that you may see');
});
