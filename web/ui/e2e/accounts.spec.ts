// Accounts in the browser against the real server: signing up, in and
// out, saved scripts, history and comparing runs, ownership, API tokens,
// and quotas said in words.
import { test, expect, setScript, statusOf, createUser, signIn, uniqueName, PASSWORD } from './fixtures';

test('sign up (a weak password is refused with the server words, by the field), sign out, sign in', async ({ page }) => {
  const username = uniqueName('ada');
  await page.goto('/');
  await page.getByRole('link', { name: 'Sign up', exact: true }).click();
  const form = page.getByRole('form', { name: 'Sign up' });
  await form.getByRole('textbox', { name: 'Username' }).fill(username);
  const password = form.getByRole('textbox', { name: 'Password' });
  await password.fill('password12345678');
  await form.getByRole('button', { name: 'Sign up' }).click();
  // The 422 message, verbatim, describes the password field and has its focus.
  const reason = 'password is too easy to guess: it is a common password with digits or symbols added; choose another';
  await expect(form.locator('#auth-password-error')).toHaveText(reason);
  await expect(password).toHaveAttribute('aria-invalid', 'true');
  await expect(password).toHaveAccessibleDescription(reason);
  await expect(password).toBeFocused();

  await password.fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign up' }).click();
  await expect(page).toHaveURL(/\/$/);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav).toContainText(`Signed in as ${username}`);
  await expect(nav.getByRole('link', { name: 'Sign in' })).toHaveCount(0);
  await expect(nav.getByRole('link', { name: 'Admin' })).toHaveCount(0); // a new account is never an admin
  // The session survives a reload (HttpOnly cookies; the app only asks /auth/me).
  await page.reload();
  await expect(nav).toContainText(username);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(nav.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
  expect((await page.request.get('/api/v1/auth/me')).status()).toBe(401);

  // The same name again is taken: said by the username field.
  await nav.getByRole('link', { name: 'Sign up', exact: true }).click();
  await form.getByRole('textbox', { name: 'Username' }).fill(username.toUpperCase());
  await form.getByRole('textbox', { name: 'Password' }).fill(PASSWORD + ' again');
  await form.getByRole('button', { name: 'Sign up' }).click();
  await expect(form.getByRole('textbox', { name: 'Username' })).toHaveAccessibleDescription(`username ${username.toUpperCase()} is taken`);

  await nav.getByRole('link', { name: 'Sign in', exact: true }).click();
  const signInForm = page.getByRole('form', { name: 'Sign in' });
  await signInForm.getByRole('textbox', { name: 'Username' }).fill(username);
  await signInForm.getByRole('textbox', { name: 'Password' }).fill('not the password at all');
  await signInForm.getByRole('button', { name: 'Sign in' }).click();
  await expect(signInForm.getByRole('alert')).toHaveText('username or password is incorrect');
  await signInForm.getByRole('textbox', { name: 'Password' }).fill(PASSWORD);
  await signInForm.getByRole('button', { name: 'Sign in' }).click();
  await expect(nav).toContainText(username);
});

test('an ended access cookie is refreshed, once, and runs stay the user\'s', async ({ page, context }) => {
  const username = createUser('rita');
  await signIn(page, username);
  const refreshes: number[] = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/api/v1/auth/refresh')) refreshes.push(r.status());
  });
  // As ten minutes later: the browser has dropped the access cookie; the
  // refresh cookie (path /api/v1/auth, 30 days) remains.
  const dropAccess = async () => {
    const keep = (await context.cookies()).filter((c) => c.name === 'integr8scode_refresh');
    expect(keep).toHaveLength(1);
    await context.clearCookies();
    await context.addCookies(keep);
  };

  // A 401 from a request sent while signed in: refreshed once, retried once.
  await dropAccess();
  await page.goto('/history');
  await expect(page.getByText('No executions yet')).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' })).toContainText(username);
  expect(refreshes).toEqual([200]);

  // A session known to have ended is refreshed before the request: a
  // submission must not go out without the cookie, where the server would
  // take it as anonymous and it would never reach the user's history.
  await dropAccess();
  await page.evaluate(() => localStorage.setItem('integr8scode.session.v1', JSON.stringify({ accessEndsAt: Date.now() - 1000 })));
  await page.getByRole('link', { name: 'Integr8sCode, the editor' }).click();
  await setScript(page, 'print("after the refresh")\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('completed');
  expect(refreshes).toEqual([200, 200]);
  await page.getByRole('link', { name: 'History' }).click();
  await expect(page.getByRole('region', { name: 'Your executions' }).getByRole('row')).toHaveCount(2);
  await expect(page.getByRole('region', { name: 'Your executions' })).toContainText('print("after the refresh")');

  // A refresh the server refuses (the sign-in ended elsewhere) signs the page out.
  await context.clearCookies();
  await page.evaluate(() => localStorage.setItem('integr8scode.session.v1', JSON.stringify({ accessEndsAt: Date.now() - 1000 })));
  await page.getByRole('link', { name: 'Scripts' }).click();
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
  expect(refreshes).toEqual([200, 200, 401]);
});

test('save a script from the editor, find it under Scripts, rename it, reopen it, update it, delete it', async ({ page }) => {
  await signIn(page, createUser('sam'));
  await page.goto('/');
  await setScript(page, 'print("kept for later")\n');
  await page.getByRole('textbox', { name: 'Stdin' }).fill('some input');
  await page.getByRole('textbox', { name: 'Script name' }).fill('greeting');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByText('Saved as “greeting”.')).toBeVisible();

  await page.getByRole('link', { name: 'Scripts' }).click();
  const list = page.getByRole('list', { name: 'Saved scripts' });
  await expect(list.getByRole('listitem')).toHaveCount(1);
  await expect(list).toContainText('greeting');
  await expect(list).toContainText('print("kept for later")');

  await list.getByRole('button', { name: 'Rename greeting' }).click();
  const rename = page.getByRole('form', { name: 'Rename greeting' });
  await expect(rename.getByRole('textbox', { name: 'New name for “greeting”' })).toBeFocused();
  await rename.getByRole('textbox').fill('hello');
  await rename.getByRole('button', { name: 'Rename' }).click();
  await expect(page.getByText('Renamed “greeting” to “hello”.')).toBeVisible();
  await page.reload(); // the server has the new name
  await expect(list).toContainText('hello');
  await expect(list).not.toContainText('greeting');

  // Start from another script, then open the saved one into the editor.
  await page.goto('/');
  await setScript(page, 'print("something else")\n');
  await page.getByRole('link', { name: 'Scripts' }).click();
  await list.getByRole('button', { name: 'Open hello' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('.cm-content')).toContainText('print("kept for later")');
  await expect(page.getByRole('textbox', { name: 'Stdin' })).toHaveValue('some input');
  await expect(page.getByRole('textbox', { name: 'Script name' })).toHaveValue('hello');

  // Saving under the same name updates it in place.
  await setScript(page, 'print("kept, and changed")\n');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByText('Updated “hello”.')).toBeVisible();
  await page.getByRole('link', { name: 'Scripts' }).click();
  await expect(list.getByRole('listitem')).toHaveCount(1);
  await expect(list).toContainText('print("kept, and changed")');

  page.once('dialog', (d) => d.accept());
  await list.getByRole('button', { name: 'Delete hello' }).click();
  await expect(page.getByText('Deleted “hello”.')).toBeVisible();
  await page.reload();
  await expect(page.getByText('No saved scripts yet')).toBeVisible();
});

test('Save without an account says how to get one', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('.cm-content')).toBeVisible();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Saving scripts needs an account');
  await expect(alert.getByRole('link', { name: 'sign in' })).toBeVisible();
});

test('history: newest first, by status, page by page, and two runs compared', async ({ page }) => {
  test.setTimeout(150_000);
  await signIn(page, createUser('hal'));
  // 21 runs, one more than a page, the last one failing; wait until all ended.
  const ids: string[] = [];
  for (let i = 0; i < 21; i++) {
    const script = i < 20 ? `print("run ${i}")\nprint("same line")\n` : 'print("run 20")\nprint("other line")\nraise SystemExit(3)\n';
    const r = await page.request.post('/api/v1/executions', { data: { script } });
    expect(r.status(), await r.text()).toBe(202);
    ids.push((await r.json()).execution_id);
  }
  await expect
    .poll(
      async () => {
        const r = await page.request.get('/api/v1/executions?limit=100');
        return (await r.json()).executions.filter((e: { status: string }) => e.status === 'completed' || e.status === 'failed').length;
      },
      { timeout: 120_000, intervals: [1000] },
    )
    .toBe(21);

  await page.getByRole('link', { name: 'History' }).click();
  const table = page.getByRole('region', { name: 'Your executions' });
  const rows = table.getByRole('row');
  await expect(rows).toHaveCount(21); // header + 20
  // Newest first: the last submission heads the list.
  await expect(rows.nth(1).locator(`a[href="/executions/${ids[20]}"]`)).toBeVisible();
  await expect(rows.nth(1)).toContainText('failed: the script exited with an error');
  await expect(page.getByText('Page 1')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Newer' })).toBeDisabled();
  await page.getByRole('button', { name: 'Older' }).click();
  await expect(page.getByText('Page 2')).toBeVisible();
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1).locator(`a[href="/executions/${ids[0]}"]`)).toBeVisible();
  await expect(page.getByRole('button', { name: 'Older' })).toBeDisabled();
  // Pick the oldest run here, then the newest on page 1: a comparison across pages.
  await rows.nth(1).getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Newer' }).click();
  await expect(page.getByText('Page 1')).toBeVisible();
  // The page number changes at once, the rows when page 1 has come: wait
  // for them, or the check lands on page 2's row, already ticked.
  await expect(rows).toHaveCount(21);
  await rows.nth(1).getByRole('checkbox').check();
  const comparison = page.getByRole('region', { name: 'Comparison' });
  await expect(comparison).toContainText('older:');
  const diff = comparison.getByRole('region', { name: 'Output difference' });
  await expect(diff).toContainText('− run 0');
  await expect(diff).toContainText('+ run 20');
  await expect(diff).toContainText('− same line');
  await expect(diff).toContainText('+ other line');

  // By status: only the failed run.
  await page.getByRole('combobox', { name: 'Status' }).selectOption('failed');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText('failed');
  await page.getByRole('combobox', { name: 'Status' }).selectOption('completed');
  await expect(rows).toHaveCount(21);
  await expect(rows.nth(1).locator(`a[href="/executions/${ids[19]}"]`)).toBeVisible();
});

test('ownership: another user, and an anonymous visitor, get a clear "not found" for a user\'s execution', async ({ page, browser }) => {
  await signIn(page, createUser('owner'));
  await page.goto('/');
  await setScript(page, 'print("mine alone")\n');
  await page.getByRole('button', { name: 'Run' }).click();
  await expect(statusOf(page)).toContainText('completed');
  await page.getByRole('link', { name: 'Permalink' }).click();
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('mine alone');
  await expect(page.getByTestId('chain-verdict')).toContainText('Verified');
  const url = page.url();

  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await signIn(otherPage, createUser('other'));
  await otherPage.goto(url);
  await expect(otherPage.getByRole('heading', { level: 1 })).toHaveText('Execution not found');
  await expect(otherPage.getByRole('alert')).toContainText('belongs to another account');
  await expect(otherPage.getByText('mine alone')).toHaveCount(0);
  // Nor does it appear in their history.
  await otherPage.goto('/history');
  await expect(otherPage.getByText('No executions yet')).toBeVisible();
  await other.close();

  const anonymous = await browser.newContext();
  const anonPage = await anonymous.newPage();
  await anonPage.goto(url);
  await expect(anonPage.getByRole('heading', { level: 1 })).toHaveText('Execution not found');
  await expect(anonPage.getByRole('alert').getByRole('link', { name: 'sign in' })).toBeVisible();
  await anonymous.close();
});

test('API tokens: create one (shown once, copied), use it, list it, revoke it', async ({ page, request }) => {
  const username = createUser('tok');
  await signIn(page, username);
  await page.getByRole('link', { name: 'API tokens' }).click();
  const form = page.getByRole('form', { name: 'Create a token' });
  await form.getByRole('textbox', { name: 'Token name' }).fill('laptop CLI');
  await form.getByRole('combobox', { name: 'Expires' }).selectOption({ label: '30 days' });
  await form.getByRole('button', { name: 'Create token' }).click();
  const secret = page.getByTestId('new-token');
  await expect(secret).toHaveText(/^i8c_/);
  const token = (await secret.textContent())!;
  await expect(page.getByText('it is shown only this once')).toBeVisible();
  await page.getByRole('button', { name: 'Copy the new token' }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

  // The token works, from outside the browser (no cookies), as this user.
  const bearer = { Authorization: `Bearer ${token}` };
  const me = await request.get('/api/v1/auth/me', { headers: bearer });
  expect(me.status()).toBe(200);
  expect((await me.json()).username).toBe(username);

  const list = page.getByRole('region', { name: 'Your tokens' });
  await expect(list.getByRole('row')).toHaveCount(2);
  await expect(list).toContainText('laptop CLI');
  // Shown once: after a reload the secret is gone, the token stays listed.
  await page.reload();
  await expect(page.getByTestId('new-token')).toHaveCount(0);
  await expect(list).toContainText('laptop CLI');
  await expect(page.getByText(token)).toHaveCount(0);

  page.once('dialog', (d) => d.accept());
  await list.getByRole('button', { name: 'Revoke laptop CLI' }).click();
  await expect(page.getByText('Revoked “laptop CLI”.')).toBeVisible();
  await expect(page.getByText('No tokens.')).toBeVisible();
  // Revoked at once.
  const after = await request.get('/api/v1/auth/me', { headers: bearer });
  expect(after.status()).toBe(401);
});
