// Accessibility (axe on every page, both themes), keyboard-only use, the
// 375 px layout, and the screenshots docs/ui.md shows (written there only
// with UPDATE_SCREENSHOTS=1, so that a test run leaves the work tree as it
// was; otherwise into this run's test output).
import AxeBuilder from '@axe-core/playwright';
import { test, expect, setScript, statusOf } from './fixtures';
import type { Page, TestInfo } from '@playwright/test';

const docs = new URL('../../../docs/ui/', import.meta.url).pathname;
const shotPath = (info: TestInfo, name: string) => (process.env.UPDATE_SCREENSHOTS === '1' ? `${docs}${name}.png` : info.outputPath(`${name}.png`));

async function finishedExecution(page: Page): Promise<string> {
  const r = await page.request.post('/api/v1/executions?wait=true', {
    data: { script: 'import sys\nprint("\\033[1;32mHello\\033[0m from the sandbox")\nprint(sum(range(10**6)))\nprint("a warning", file=sys.stderr)\n' },
  });
  expect(r.status()).toBe(200);
  return (await r.json()).execution_id;
}

async function seriousViolations(page: Page) {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

for (const scheme of ['light', 'dark'] as const) {
  test(`axe finds nothing serious on any page (${scheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    const id = await finishedExecution(page);
    const pages: [string, () => Promise<void>][] = [
      ['/', async () => expect(page.locator('.cm-content')).toBeVisible()],
      [`/executions/${id}`, async () => expect(page.getByTestId('chain-verdict')).toContainText('Verified')],
      ['/history', async () => expect(page.getByRole('heading', { name: 'History' })).toBeVisible()],
      ['/scripts', async () => expect(page.getByRole('heading', { name: 'Scripts' })).toBeVisible()],
      ['/sign-in', async () => expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible()],
      ['/sign-up', async () => expect(page.getByRole('button', { name: 'Sign up' })).toBeVisible()],
      ['/no/such/page', async () => expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible()],
    ];
    for (const [path, ready] of pages) {
      await page.goto(path);
      await ready();
      expect(await seriousViolations(page), path).toEqual([]);
    }
    // The editor after a run, with output, errors and the permalink.
    await page.goto('/');
    await setScript(page, 'import sys\nprint("\\033[31mred\\033[0m")\nprint("oops", file=sys.stderr)\n');
    await page.getByRole('button', { name: 'Run' }).click();
    await expect(statusOf(page)).toContainText('completed');
    await page.getByText('Limits').click();
    expect(await seriousViolations(page), '/ after a run').toEqual([]);
  });
}

test('keyboard only: write, run, open the permalink, switch the theme', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('.cm-content')).toBeVisible();
  const focusedIs = (sel: string) => page.evaluate((s) => !!document.activeElement?.matches(s), sel);
  const tabTo = async (sel: string, limit = 30) => {
    for (let i = 0; i < limit; i++) {
      if (await focusedIs(sel)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error(`Tab never reached ${sel}`);
  };
  await tabTo('.cm-content');
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.insertText('for i in range(3):\n    print("line", i)\n');
  await page.keyboard.press('Control+Enter');
  await expect(statusOf(page)).toContainText('completed');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('line 2');
  // Escape, then Tab, leaves the editor (Tab alone indents).
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  expect(await focusedIs('.cm-content')).toBe(false);
  await tabTo('a[href^="/executions/"]');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/executions\//);
  await expect(page.getByTestId('chain-verdict')).toContainText('Verified');
  // Focus moved to the new page's heading, for screen readers.
  expect(await focusedIs('main h1')).toBe(true);
  await page.keyboard.press('Shift+Tab');
  await tabTo('header select');
  await page.keyboard.press('ArrowDown'); // System → Light
  await page.keyboard.press('ArrowDown'); // Light → Dark
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
});

test('375 px wide: nothing scrolls sideways and every control is reachable', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  const id = await finishedExecution(page);
  for (const path of ['/', `/executions/${id}`, '/sign-in']) {
    await page.goto(path);
    await page.waitForLoadState('networkidle');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, path).toBeLessThanOrEqual(375);
  }
  await page.goto('/');
  for (const name of ['Run', 'Cancel', 'Save']) {
    const box = await page.getByRole('button', { name, exact: true }).boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 375, name).toBe(true);
  }
});

test('screenshots for docs/ui.md', async ({ page }, info) => {
  const id = await finishedExecution(page);
  const views = [
    { name: 'light', scheme: 'light' as const, width: 1280, height: 800 },
    { name: 'dark', scheme: 'dark' as const, width: 1280, height: 800 },
    { name: 'mobile', scheme: 'light' as const, width: 375, height: 800 },
  ];
  for (const v of views) {
    await page.setViewportSize({ width: v.width, height: v.height });
    await page.emulateMedia({ colorScheme: v.scheme });
    await page.goto('/');
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await setScript(page, 'import sys\n\nname = sys.stdin.readline().strip() or "world"\nfor colour in (31, 32, 34):\n    print(f"\\033[{colour}mHello, {name}!\\033[0m")\nprint("done", file=sys.stderr)\n');
    await page.getByRole('textbox', { name: 'Stdin' }).fill('Ada');
    await page.getByRole('button', { name: 'Run' }).click();
    await expect(statusOf(page)).toContainText('completed');
    await page.locator('body').click({ position: { x: 1, y: 1 } }); // no focus ring in the picture
    await page.screenshot({ path: shotPath(info, `editor-${v.name}`), fullPage: v.name === 'mobile' });
    await page.goto(`/executions/${id}`);
    await expect(page.getByTestId('chain-verdict')).toContainText('Verified');
    await page.screenshot({ path: shotPath(info, `execution-${v.name}`), fullPage: true });
  }
});
