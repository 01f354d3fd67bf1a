// The admin pages against the real server, with the first admin made as
// an operator makes it: `integr8scode admin create-user --role admin` on
// the running server's data directory.
import { test, expect, setScript, createUser, signIn, runAs, PASSWORD } from './fixtures';

test('admin: queue figures (statistics come later), users (role, disable, limits), every execution with its owner, verified', async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(120_000);
  const admin = createUser('root', 'admin');
  const target = createUser('target');

  // A user's run and an anonymous one, for the list of every execution.
  const userContext = await browser.newContext();
  const userPage = await userContext.newPage();
  await signIn(userPage, target);
  const userRun = await runAs(userPage, 'print("by target")\n');
  const anon = await request.post('/api/v1/executions?wait=true', { data: { script: 'print("by nobody")\n' } });
  expect(anon.status()).toBe(200);

  await signIn(page, admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Administration');
  // The server has no /api/v1/stats: the page says so and shows the queue it does report.
  expect((await request.get('/api/v1/stats')).status()).toBe(404);
  await expect(page.getByTestId('stats-later')).toContainText('Statistics come later');
  await expect(page.getByTestId('queued')).toHaveText(/^\d+( or more)?$/);
  await expect(page.getByTestId('running')).toHaveText(/^\d+( or more)?$/);

  // Users.
  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Users' }).click();
  const accounts = page.getByRole('list', { name: 'Accounts' });
  const row = accounts.getByRole('listitem').filter({ has: page.getByRole('heading', { name: target, exact: true }) });
  await expect(row).toBeVisible();
  // An admin cannot demote themselves: the server's 409, in its words, and the control shows the truth.
  const me = accounts.getByRole('listitem').filter({ has: page.getByRole('heading', { name: admin, exact: true }) });
  await me.getByRole('combobox', { name: `Role of ${admin}` }).selectOption('user');
  await expect(page.getByRole('alert')).toContainText('you cannot take away your own admin role');
  await expect(me.getByRole('combobox', { name: `Role of ${admin}` })).toHaveValue('admin');

  await row.getByRole('combobox', { name: `Role of ${target}` }).selectOption('admin');
  await expect(page.getByText(`${target} is now an admin.`)).toBeVisible();
  await row.getByRole('combobox', { name: `Role of ${target}` }).selectOption('user');
  await expect(page.getByText(`${target} is now a user.`)).toBeVisible();

  // Disabled: their session stops working at once; enabled again, they sign in.
  await row.getByRole('checkbox', { name: `Disabled (${target})` }).check();
  await expect(page.getByText(`${target} is disabled`)).toBeVisible();
  await expect(row).toContainText('disabled');
  expect((await userPage.request.get('/api/v1/auth/me')).status()).toBe(401);
  const refused = await request.post('/api/v1/auth/login', { data: { username: target, password: PASSWORD } });
  expect(refused.status()).toBe(401);
  await row.getByRole('checkbox', { name: `Disabled (${target})` }).uncheck();
  await expect(page.getByText(`${target} is enabled again.`)).toBeVisible();

  // Limits: one execution at once. Over it, the user is told when to try again, in words.
  const limits = row.getByRole('form', { name: `Limits of ${target}` });
  await limits.getByRole('spinbutton', { name: `At once for ${target}` }).fill('1');
  await limits.getByRole('button', { name: 'Save limits' }).click();
  await expect(page.getByText(`${target}'s limits are saved.`)).toBeVisible();
  await signIn(userPage, target);
  const sleeper = await userPage.request.post('/api/v1/executions', { data: { script: 'import time\ntime.sleep(4)\n' } });
  expect(sleeper.status()).toBe(202);
  await userPage.goto('/');
  await setScript(userPage, 'print("one too many")\n');
  await userPage.getByRole('button', { name: 'Run' }).click();
  await expect(userPage.getByRole('alert')).toHaveText(
    /^you have 1 executions queued or running, the most allowed at once; retry when one ends\. Try again in \d+ seconds?\.$/,
  );
  await limits.getByRole('button', { name: "Use the role's limits" }).click();
  await expect(page.getByText(`${target} has their role's limits again.`)).toBeVisible();
  // The role's limits of the test server (--quota-user in playwright.config.ts).
  await expect(limits.getByRole('spinbutton', { name: `At once for ${target}` })).toHaveValue('100');
  await userContext.close();

  // Every execution, with owner names; filtered by owner; verified in this browser.
  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'All executions' }).click();
  const table = page.getByRole('region', { name: 'All executions' });
  await expect(table.locator(`a[href="/executions/${userRun}"]`)).toBeVisible();
  const userRow = table.getByRole('row').filter({ has: page.locator(`a[href="/executions/${userRun}"]`) });
  await expect(userRow).toContainText(target);
  await expect(table.getByRole('row').filter({ hasText: 'anonymous' }).first()).toBeVisible();
  await page.getByRole('combobox', { name: 'Owner' }).selectOption({ label: target });
  await expect(table.getByRole('row')).toHaveCount(3); // header, the run, the sleeper
  await expect(table.getByRole('row').filter({ hasText: 'anonymous' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Verify these in this browser' }).click();
  await expect(page.getByTestId('ledger-summary')).toContainText('Verified in this browser: the ledger chains of all 2 executions shown check out', {
    timeout: 30_000,
  });
  await expect(userRow).toContainText('verified (3 events)');
});

test('a tampered event makes the admin verification red', async ({ page }) => {
  const admin = createUser('auditor', 'admin');
  await signIn(page, admin);
  const id = await runAs(page, 'print("audited")\n');
  // Only the events endpoint is doubled: everything else is the real server.
  await page.route(`**/api/v1/executions/${id}/events`, async (route) => {
    const resp = await route.fetch();
    const doc = await resp.json();
    doc.events[0].record.data.script = 'print("forged")\n';
    await route.fulfill({ response: resp, json: doc });
  });
  await page.goto('/admin/executions');
  await page.getByRole('combobox', { name: 'Owner' }).selectOption({ label: admin });
  const table = page.getByRole('region', { name: 'All executions' });
  await expect(table.getByRole('row')).toHaveCount(2);
  await page.getByRole('button', { name: 'Verify these in this browser' }).click();
  await expect(page.getByTestId('ledger-summary')).toContainText('1 of 1 executions shown do not check out');
  await expect(table.getByRole('row').nth(1)).toContainText('not verified: ');
});

test('the admin pages are for admins only', async ({ page }) => {
  await signIn(page, createUser('plain'));
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' })).toHaveCount(0);
  await page.goto('/admin/users');
  await expect(page.getByText('Administration is for administrators only')).toBeVisible();
  await expect(page.getByRole('list', { name: 'Accounts' })).toHaveCount(0);
});
