// The admin pages against the real server, with the first admin made as
// an operator makes it: `integr8scode admin create-user --role admin` on
// the running server's data directory.
import { test, expect, setScript, createUser, signIn, runAs, PASSWORD } from './fixtures';

test('admin: queue figures and statistics, users (role, disable, limits), every execution with its owner, verified', async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(120_000);
  const admin = createUser('root', 'admin');
  const target = createUser('target');

  // The target's runs of known outcomes (2 completed, 2 failed: an error
  // and a time limit) and an anonymous one, for the statistics and the
  // list of every execution.
  const userContext = await browser.newContext();
  const userPage = await userContext.newPage();
  await signIn(userPage, target);
  const userRun = await runAs(userPage, 'print("by target")\n');
  await runAs(userPage, 'print(sum(range(10)))\n');
  await runAs(userPage, 'raise SystemExit(3)\n');
  const slow = await userPage.request.post('/api/v1/executions?wait=true', { data: { script: 'while True:\n    pass\n', limits: { timeout_ms: 1000 } } });
  expect((await slow.json()).failure_reason).toBe('timeout');
  const anon = await request.post('/api/v1/executions?wait=true', { data: { script: 'print("by nobody")\n' } });
  expect(anon.status()).toBe(200);
  expect((await request.get('/api/v1/stats')).status()).toBe(401); // anonymous callers have none
  // Statistics are a projection: wait until it has the four ended runs.
  const mine = async () => (await (await userPage.request.get('/api/v1/stats')).json()) as { by_status: Record<string, number> };
  await expect.poll(async () => (await mine()).by_status, { timeout: 20_000 }).toEqual({ completed: 2, failed: 2 });

  // The user's own statistics under their history: exactly their runs.
  await userPage.goto('/history');
  const own = userPage.getByRole('region', { name: 'Your last 7 days' });
  await expect(own.getByTestId('my-stats-executions')).toHaveText('4');
  await expect(own.getByTestId('my-stats-completed')).toHaveText('2');
  await expect(own.getByTestId('my-stats-failed')).toHaveText('2');
  await expect(own.getByRole('rowheader', { name: 'Wall time' }).locator('..')).toHaveText(/^\s*Wall time\s*4\s*((\d+ ms|[\d.]+ s)\s*){4}$/);
  await expect(own.getByRole('img', { name: /^Executions per day, 7 days from .+: 4 in all/ })).toBeVisible();

  await signIn(page, admin);
  // Everyone's statistics of the last 24 hours: the totals are the server's
  // (the other tests of this run share the server), once every run so far
  // has ended in the projection; the target's row is theirs alone.
  type Everyone = { executions: number; by_status: Record<string, number> };
  let all: Everyone = { executions: 0, by_status: {} };
  await expect
    .poll(async () => {
      all = await (await page.request.get('/api/v1/stats')).json();
      return (all.by_status.queued ?? 0) + (all.by_status.running ?? 0);
    })
    .toBe(0);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Administration');
  await expect(page.getByTestId('queued')).toHaveText(/^\d+( or more)?$/);
  await expect(page.getByTestId('running')).toHaveText(/^\d+( or more)?$/);
  expect(all.by_status.completed).toBeGreaterThanOrEqual(3);
  expect(all.by_status.failed).toBeGreaterThanOrEqual(2);
  const stats = page.getByRole('region', { name: 'Statistics' });
  await expect(stats.getByTestId('stats-executions')).toHaveText(all.executions.toLocaleString('en-US'));
  await expect(stats.getByTestId('stats-completed')).toHaveText(all.by_status.completed.toLocaleString('en-US'));
  await expect(stats.getByTestId('stats-failed')).toHaveText(all.by_status.failed.toLocaleString('en-US'));
  const owners = stats.getByRole('table', { name: 'By owner' });
  await expect(owners.getByRole('row').filter({ has: page.getByRole('rowheader', { name: target, exact: true }) })).toHaveText(
    new RegExp(`^\\s*${target}\\s*4\\s*$`),
  );
  await expect(owners.getByRole('rowheader', { name: 'anonymous', exact: true })).toBeVisible();
  const reasons = stats.getByRole('table', { name: 'Failures by reason' });
  await expect(reasons.getByRole('rowheader', { name: /time limit reached/ })).toBeVisible();
  await expect(reasons.getByRole('rowheader', { name: /exited with an error/ })).toBeVisible();
  await expect(stats.getByRole('table', { name: 'By runtime' }).getByRole('rowheader', { name: /^python \d/ }).first()).toBeVisible();
  for (const measure of ['Queue wait', 'Wall time', 'CPU time']) {
    await expect(stats.getByRole('rowheader', { name: measure }).locator('..')).toHaveText(
      new RegExp(`^\\s*${measure}\\s*\\d+\\s*((\\d+ ms|[\\d.]+ (s|min|h))\\s*){4}$`),
    );
  }
  await expect(stats.getByRole('rowheader', { name: 'Peak memory' }).locator('..')).toHaveText(/^\s*Peak memory\s*\d+\s*([\d.]+ (B|KiB|MiB)\s*){4}$/);
  await expect(stats.getByRole('img', { name: new RegExp(`^Executions per hour, 24 hours from .+: ${all.executions} in all`) })).toBeVisible();
  await expect(stats.getByRole('img').locator('rect.bar')).toHaveCount(24);
  // The numbers behind the chart, as a table.
  await stats.getByText('The numbers').click();
  await expect(stats.getByRole('region', { name: 'Executions per hour' }).getByRole('row')).toHaveCount(25);
  // By day: 30 UTC days, the same executions.
  await stats.getByRole('combobox', { name: 'Range' }).selectOption({ label: 'Last 30 days, by day' });
  await expect(stats.getByRole('img', { name: /^Executions per day, 30 days from / })).toBeVisible();
  await expect(stats.getByRole('img').locator('rect.bar')).toHaveCount(30);
  await expect(stats.getByTestId('stats-completed')).toHaveText(all.by_status.completed.toLocaleString('en-US'));

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
  await expect(table.getByRole('row')).toHaveCount(6); // header, the four runs, the sleeper
  await expect(table.getByRole('row').filter({ hasText: 'anonymous' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Verify these in this browser' }).click();
  await expect(page.getByTestId('ledger-summary')).toContainText('Verified in this browser: the ledger chains of all 5 executions shown check out', {
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

test('a late answer for an earlier filter does not replace the filtered list', async ({ page, request }) => {
  const admin = createUser('filterer', 'admin');
  // Someone else's run, so that everyone's list is longer than the admin's.
  expect((await request.post('/api/v1/executions', { data: { script: 'print("theirs")\n' } })).ok()).toBe(true);
  await signIn(page, admin);
  await runAs(page, 'print("mine")\n');
  // Everyone's list, asked as the page opens, answers only after the
  // owner filter's list has been shown.
  let everyone: Promise<unknown> | undefined;
  await page.route('**/api/v1/executions?*', async (route) => {
    if (new URL(route.request().url()).searchParams.has('owner')) return route.continue();
    const resp = await route.fetch();
    // Not awaited: the handler returns, and the filtered list, asked
    // meanwhile, goes through before this answer.
    everyone = new Promise((r) => setTimeout(r, 1500)).then(() => route.fulfill({ response: resp }));
  });
  await page.goto('/admin/executions');
  await page.getByRole('combobox', { name: 'Owner' }).selectOption({ label: admin });
  const table = page.getByRole('region', { name: 'All executions' });
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect.poll(() => everyone !== undefined).toBe(true);
  await everyone;
  await page.waitForTimeout(300); // the late answer has been handled by now
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect(table.getByRole('row').nth(1)).toContainText(admin);
});

test('the admin pages are for admins only', async ({ page }) => {
  await signIn(page, createUser('plain'));
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' })).toHaveCount(0);
  await page.goto('/admin/users');
  await expect(page.getByText('Administration is for administrators only')).toBeVisible();
  await expect(page.getByRole('list', { name: 'Accounts' })).toHaveCount(0);
});
