// Every browser test fails on a Content-Security-Policy violation or an
// uncaught script error: the strict policy (web/ui.go) must cost the app
// nothing, and nothing may break quietly.
import { test as base, expect, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export const test = base.extend<{ strictPage: Page }>({
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`Refused to load: CSP violation of ${e.violatedDirective} by ${e.blockedURI || 'inline'}`);
      });
    });
    await use(page);
    expect(problems, 'CSP violations and script errors').toEqual([]);
  },
  strictPage: async ({ page }, use) => use(page),
});
export { expect };

/** Types a script into the editor, replacing what is there. */
export async function setScript(page: Page, script: string) {
  const editor = page.getByRole('textbox', { name: 'Script', exact: true });
  await expect(page.locator('.cm-content')).toBeVisible(); // CodeMirror has loaded
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  // insertText: CodeMirror's auto-indent would otherwise re-indent typed lines.
  await page.keyboard.insertText(script);
}

export const statusOf = (page: Page) => page.getByRole('status', { name: 'Status' });

// Accounts. Users are made on the machine with the admin command line,
// against the running server's data directory (as an operator makes the
// first admin): registration through the API is limited to 10 an hour per
// address, and every browser test comes from 127.0.0.1. The sign-up form
// itself is tested in accounts.spec.ts.
export const PASSWORD = 'violet lantern orbits quietly';
const binary = resolve(import.meta.dirname, '../../../bin/integr8scode');

let serial = 0;
/** A username no other test of this run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${(serial++).toString(36)}`;
}

export function createUser(prefix: string, role: 'user' | 'admin' = 'user'): string {
  const username = uniqueName(prefix);
  execFileSync(binary, ['admin', 'create-user', '--data-dir', process.env.I8S_E2E_DATA!, '--username', username, '--role', role], {
    input: PASSWORD + '\n',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return username;
}

/** Signs in through the form and waits until the header shows the account. */
export async function signIn(page: Page, username: string, password = PASSWORD) {
  await page.goto('/sign-in');
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByRole('textbox', { name: 'Username' }).fill(username);
  await form.getByRole('textbox', { name: 'Password' }).fill(password);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' })).toContainText(username);
}

/** Submits a script as the page's signed-in user and waits for its end; answers the id. */
export async function runAs(page: Page, script: string): Promise<string> {
  const r = await page.request.post('/api/v1/executions?wait=true', { data: { script } });
  expect(r.status(), await r.text()).toBe(200);
  return (await r.json()).execution_id;
}
