// The pages of signed-in users and admins: axe on each in both themes
// (with content: rows, a comparison, a new token's secret, a verified
// ledger, a refused sign-in), keyboard-only sign-in and sign-out, 375 px,
// and the screenshots in docs/ui.md (written there only with
// UPDATE_SCREENSHOTS=1; otherwise into this run's test output).
import AxeBuilder from '@axe-core/playwright';
import { test, expect, createUser, signIn, runAs, PASSWORD } from './fixtures';
import type { Page, TestInfo } from '@playwright/test';

const docs = new URL('../../../docs/ui/', import.meta.url).pathname;
const shotPath = (info: TestInfo, name: string) => (process.env.UPDATE_SCREENSHOTS === '1' ? `${docs}${name}.png` : info.outputPath(`${name}.png`));

async function seriousViolations(page: Page) {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** An admin with two runs, a saved script and an API token; answers a run of someone else too. */
async function populated(page: Page): Promise<{ admin: string; foreign: string }> {
  const other = createUser('stranger');
  const login = await page.request.post('/api/v1/auth/login', { data: { username: other, password: PASSWORD } });
  expect(login.status()).toBe(200);
  const foreign = await runAs(page, 'print("not yours")\n');
  await page.request.post('/api/v1/auth/logout');

  const admin = createUser('chief', 'admin');
  await signIn(page, admin);
  await runAs(page, 'for i in range(3):\n    print("line", i)\n');
  await runAs(page, 'import sys\nfor i in range(4):\n    print("line", i * 2)\nprint("careful", file=sys.stderr)\n');
  const saved = await page.request.post('/api/v1/scripts', { data: { name: 'squares', script: 'print([i * i for i in range(10)])\n' } });
  expect(saved.status()).toBe(201);
  return { admin, foreign };
}

async function compareTwo(page: Page) {
  await page.goto('/history');
  const rows = page.getByRole('region', { name: 'Your executions' }).getByRole('row');
  await rows.nth(1).getByRole('checkbox').check();
  await rows.nth(2).getByRole('checkbox').check();
  await expect(page.getByRole('region', { name: 'Output difference' })).toContainText('+ line 6');
  await expect(page.getByTestId('my-stats-executions')).toHaveText('2');
}

for (const scheme of ['light', 'dark'] as const) {
  test(`axe finds nothing serious on the account and admin pages (${scheme})`, async ({ page }) => {
    test.setTimeout(90_000);
    await page.emulateMedia({ colorScheme: scheme });
    const { foreign } = await populated(page);
    const check = async (what: string) => expect(await seriousViolations(page), what).toEqual([]);

    await compareTwo(page);
    await check('/history with a comparison');
    await page.goto('/scripts');
    await expect(page.getByRole('list', { name: 'Saved scripts' })).toContainText('squares');
    await page.getByRole('button', { name: 'Rename squares' }).click();
    await check('/scripts, renaming');
    await page.goto('/tokens');
    await page.getByRole('textbox', { name: 'Token name' }).fill('a11y');
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect(page.getByTestId('new-token')).toBeVisible();
    await check('/tokens with a new secret');
    await page.goto('/admin');
    await expect(page.getByTestId('stats-completed')).toBeVisible();
    await page.getByText('The numbers').click();
    await expect(page.getByRole('region', { name: 'Executions per hour' })).toBeVisible();
    await check('/admin, statistics with the numbers open');
    await page.goto('/admin/users');
    await expect(page.getByRole('list', { name: 'Accounts' })).toContainText('stranger');
    await check('/admin/users');
    await page.goto('/admin/executions');
    await page.getByRole('button', { name: 'Verify these in this browser' }).click();
    await expect(page.getByTestId('ledger-summary')).toContainText('Verified in this browser', { timeout: 30_000 });
    await check('/admin/executions, verified');

    // Signed out: another's execution, a refused sign-in, pages that need an account.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
    await page.goto(`/executions/${foreign}`);
    await expect(page.getByRole('heading', { name: 'Execution not found' })).toBeVisible();
    await check('/executions/{someone else’s}');
    for (const path of ['/tokens', '/admin']) {
      await page.goto(path);
      await expect(page.getByText('needs an account')).toBeVisible();
      await check(`${path}, signed out`);
    }
    await page.goto('/sign-in');
    await page.getByRole('textbox', { name: 'Username' }).fill('nobody-here');
    await page.getByRole('textbox', { name: 'Password' }).fill('wrong wrong wrong wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toBeVisible();
    await check('/sign-in, refused');
  });
}

test('keyboard only: sign in, reach the account pages, sign out', async ({ page }) => {
  const username = createUser('keys');
  await page.goto('/');
  await expect(page.locator('.cm-content')).toBeVisible();
  const focusedIs = (sel: string) => page.evaluate((s) => !!document.activeElement?.matches(s), sel);
  const tabTo = async (sel: string, key: 'Tab' | 'Shift+Tab' = 'Tab', limit = 40) => {
    for (let i = 0; i < limit; i++) {
      if (await focusedIs(sel)) return;
      await page.keyboard.press(key);
    }
    throw new Error(`${key} never reached ${sel}`);
  };
  await tabTo('a[href="/sign-in"]');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/sign-in$/);
  expect(await focusedIs('main h1')).toBe(true);
  await page.keyboard.press('Tab');
  expect(await focusedIs('#auth-username')).toBe(true);
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  expect(await focusedIs('#auth-password')).toBe(true);
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter'); // submits the form
  await expect(page.getByRole('navigation', { name: 'Main' })).toContainText(username);
  await expect(page).toHaveURL(/\/$/);

  // Focus is on the editor page's heading: the header is behind it (and
  // Tab inside the editor indents).
  await tabTo('a[href="/tokens"]', 'Shift+Tab');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: 'API tokens' })).toBeFocused();
  await tabTo('#token-name');
  await page.keyboard.type('from the keyboard');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('new-token')).toBeVisible();

  await tabTo('header button', 'Shift+Tab');
  await expect(page.locator(':focus')).toHaveText('Sign out');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
});

test('375 px wide: the account and admin pages do not scroll sideways', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  const { foreign } = await populated(page);
  await compareTwo(page);
  const fits = async (what: string) => {
    await page.waitForLoadState('networkidle');
    expect(await page.evaluate(() => document.documentElement.scrollWidth), what).toBeLessThanOrEqual(375);
  };
  await fits('/history with a comparison');
  for (const path of ['/scripts', '/tokens', '/admin', '/admin/users', '/admin/executions', `/executions/${foreign}`]) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    if (path === '/admin') {
      await expect(page.getByTestId('stats-completed')).toBeVisible();
      await page.getByText('The numbers').click();
    }
    await fits(path);
  }
  await page.goto('/tokens');
  await page.getByRole('textbox', { name: 'Token name' }).fill('narrow');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByTestId('new-token')).toBeVisible();
  await fits('/tokens with a new secret');
  // Every control of the accounts' cards is on screen, none cut off.
  await page.goto('/admin/users');
  await expect(page.getByRole('list', { name: 'Accounts' })).toContainText('stranger');
  for (const control of await page.getByRole('list', { name: 'Accounts' }).locator('button, input, select').all()) {
    const box = await control.boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 375, await control.evaluate((e) => e.outerHTML.slice(0, 80))).toBe(true);
  }
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
  for (const path of ['/sign-in', '/sign-up']) {
    await page.goto(path);
    await fits(path);
  }
});

test('screenshots of the account and admin pages for docs/ui.md', async ({ page, request }, info) => {
  test.setTimeout(90_000);
  await populated(page);
  // A failure, anonymous, for the overview's failures by reason.
  const failed = await request.post('/api/v1/executions?wait=true', { data: { script: 'raise SystemExit(1)\n' } });
  expect((await failed.json()).status).toBe('failed');
  const views = [
    { name: 'light', scheme: 'light' as const, width: 1280, height: 800 },
    { name: 'dark', scheme: 'dark' as const, width: 1280, height: 800 },
    { name: 'mobile', scheme: 'light' as const, width: 375, height: 800 },
  ];
  for (const v of views) {
    await page.setViewportSize({ width: v.width, height: v.height });
    await page.emulateMedia({ colorScheme: v.scheme });
    const shoot = async (name: string) => {
      await page.locator('body').click({ position: { x: 1, y: 1 } }); // no focus ring in the picture
      await page.screenshot({ path: shotPath(info, `${name}-${v.name}`), fullPage: true });
    };
    await compareTwo(page);
    await shoot('history');
    await page.goto('/scripts');
    await expect(page.getByRole('list', { name: 'Saved scripts' })).toContainText('squares');
    await shoot('scripts');
    await page.goto('/admin');
    await expect(page.getByTestId('stats-completed')).toBeVisible();
    await expect(page.getByRole('table', { name: 'By owner' })).toContainText('chief');
    await expect(page.getByRole('table', { name: 'Failures by reason' })).toContainText('runtime_error');
    await shoot('admin-overview');
    await page.goto('/admin/executions');
    await page.getByRole('button', { name: 'Verify these in this browser' }).click();
    await expect(page.getByTestId('ledger-summary')).toContainText('Verified in this browser', { timeout: 30_000 });
    await shoot('admin-executions');
    await page.goto('/admin/users');
    await expect(page.getByRole('list', { name: 'Accounts' })).toContainText('chief');
    await shoot('admin-users');
  }
  // Signed out, the sign-in form with the server's refusal.
  await page.getByRole('button', { name: 'Sign out' }).click();
  for (const v of views) {
    await page.setViewportSize({ width: v.width, height: v.height });
    await page.emulateMedia({ colorScheme: v.scheme });
    await page.goto('/sign-in');
    await page.getByRole('textbox', { name: 'Username' }).fill('ada');
    await page.getByRole('textbox', { name: 'Password' }).fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('username or password is incorrect');
    await page.locator('body').click({ position: { x: 1, y: 1 } });
    await page.screenshot({ path: shotPath(info, `sign-in-${v.name}`), fullPage: v.name === 'mobile' });
  }
});
