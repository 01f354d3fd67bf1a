// Every browser test fails on a Content-Security-Policy violation or an
// uncaught script error: the strict policy (web/ui.go) must cost the app
// nothing, and nothing may break quietly.
import { test as base, expect, type Page } from '@playwright/test';

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
  const editor = page.getByRole('textbox', { name: 'Script' });
  await expect(page.locator('.cm-content')).toBeVisible(); // CodeMirror has loaded
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  // insertText: CodeMirror's auto-indent would otherwise re-indent typed lines.
  await page.keyboard.insertText(script);
}

export const statusOf = (page: Page) => page.getByRole('status', { name: 'Status' });
