// Browser test of the web UI shell against a real Hearth server, in the system Chromium.
// Env: HEARTH_URL (http://127.0.0.1:PORT), SETUP_TOKEN, OUT (screenshot dir), CHROMIUM (optional).
// run.sh starts the server and sets these; see there.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { BASE, OUT, SETUP_TOKEN, go, openBrowser, screenshots } from './lib.mjs';

const ADMIN = { name: 'alex', display: 'Alex Admin', password: 'hearth-admin-pw' };
const MEMBER = { name: 'sam', display: 'Sam Member', password: 'hearth-member-pw' };
// Signing in lands on #general: /app/chat/CHANNEL_ID.
const IN_CHAT = /\/app\/chat\/[^/]+$/;

describe('Hearth web UI shell', () => {
  let a; // the admin's browser
  let b; // the invited member's browser
  let inviteLink = '';

  before(async () => {
    await mkdir(OUT, { recursive: true });
    a = await openBrowser('admin');
  });

  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('sends a fresh appliance to /setup', async () => {
    await go(a.page, '/');
    await a.page.waitForURL('**/setup');
    await a.page.locator('#setup-token').waitFor();
    assert.equal(await a.page.title(), 'Set up · Hearth');
    await screenshots(a.page, 'setup');
  });

  it('shows the server\'s message for a wrong setup token', async () => {
    const { page } = a;
    await page.fill('#setup-token', 'not-the-token');
    await page.fill('#setup-name', ADMIN.name);
    await page.fill('#setup-display-name', ADMIN.display);
    await page.fill('#setup-password', ADMIN.password);
    await page.fill('#setup-confirm', ADMIN.password);
    await page.press('#setup-confirm', 'Enter'); // forms submit with Enter
    const error = page.getByTestId('setup-error');
    await error.waitFor();
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.ok((await error.textContent()).trim().length > 5, 'an error sentence is shown');
    assert.match(page.url(), /\/setup$/);
  });

  it('refuses mismatched passwords before asking the server', async () => {
    const { page } = a;
    await page.fill('#setup-token', SETUP_TOKEN);
    await page.fill('#setup-confirm', 'something-else');
    await page.click('[data-testid=setup-submit]');
    await assert.doesNotReject(page.getByTestId('setup-error').filter({ hasText: 'do not match' }).waitFor());
  });

  it('creates the admin and opens the app', async () => {
    const { page } = a;
    await page.fill('#setup-confirm', ADMIN.password);
    await page.click('[data-testid=setup-submit]');
    await page.waitForURL(IN_CHAT);
    await page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();
    assert.equal(await page.getByTestId('user-display-name').textContent(), ADMIN.display);
    await page.locator('[data-testid=live][data-state=online]').waitFor();
    await screenshots(page, 'app');
  });

  it('keeps the session across a reload and shows the profile', async () => {
    const { page } = a;
    await page.reload();
    await page.click('[data-testid=nav-profile]');
    await page.waitForURL('**/app/profile');
    assert.equal(await page.inputValue('#profile-display-name'), ADMIN.display);
    await page.fill('#profile-display-name', 'Alex');
    await page.click('[data-testid=profile-name-save]');
    await page.getByTestId('profile-name-status').filter({ hasText: 'Saved' }).waitFor();
    assert.equal(await page.getByTestId('user-display-name').textContent(), 'Alex');
    await page.fill('#profile-display-name', ADMIN.display);
    await page.click('[data-testid=profile-name-save]');
    await page.getByTestId('user-display-name').filter({ hasText: ADMIN.display }).waitFor();
    await screenshots(page, 'profile');
  });

  it('creates an invite link with a QR code', async () => {
    const { page } = a;
    await page.click('[data-testid=nav-admin]');
    await page.waitForURL('**/app/admin');
    await page.locator(`[data-testid=user-row][data-name=${ADMIN.name}]`).waitFor();
    await page.fill('#invite-uses', '1');
    await page.fill('#invite-ttl', '2');
    await page.selectOption('#invite-unit', 'days');
    await page.click('[data-testid=invite-create]');
    const link = page.getByTestId('invite-link');
    await link.waitFor();
    inviteLink = (await link.textContent()).trim();
    assert.match(inviteLink, new RegExp(`^${BASE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/join/[^/]+$`));
    const qr = page.getByTestId('invite-qr');
    await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await qr.elementHandle());
    await page.locator('[data-testid=invite-row] [data-testid=invite-status]', { hasText: 'Active' }).first().waitFor();
    await screenshots(page, 'admin', page.locator('#invite-result'));
  });

  it('lets a second person join with the link', async () => {
    b = await openBrowser('member');
    const { page } = b;
    await page.goto(inviteLink);
    await page.locator('#join-name').waitFor();
    await screenshots(page, 'join');
    await page.fill('#join-name', MEMBER.name);
    await page.fill('#join-display-name', MEMBER.display);
    await page.fill('#join-password', MEMBER.password);
    await page.fill('#join-confirm', MEMBER.password);
    await page.press('#join-confirm', 'Enter');
    await page.waitForURL(IN_CHAT);
    assert.equal(await page.getByTestId('user-display-name').textContent(), MEMBER.display);
  });

  it('hides Admin from members', async () => {
    const { page } = b;
    await page.getByTestId('nav-devices').waitFor();
    assert.equal(await page.getByTestId('nav-admin').count(), 0);
    await go(page, '/app/admin');
    await page.getByTestId('admin-forbidden').waitFor();
  });

  it('shows the member their device', async () => {
    const { page } = b;
    await page.click('[data-testid=nav-devices]');
    await page.waitForURL('**/app/devices');
    const mine = page.locator('[data-testid=device][data-current=true]');
    await mine.waitFor();
    assert.equal(await mine.getByTestId('this-device').count(), 1);
    await screenshots(page, 'devices');
  });

  it('says when an invite is used up', async () => {
    const other = await a.context.newPage();
    await other.goto(inviteLink);
    await other.getByTestId('join-invalid').waitFor();
    await screenshots(other, 'join-used');
    await other.close();
  });

  it('shows both people to the admin, who can disable and enable the member', async () => {
    const { page } = a;
    await page.reload();
    const rows = page.getByTestId('user-row');
    await page.locator(`[data-testid=user-row][data-name=${MEMBER.name}]`).waitFor();
    assert.deepEqual((await rows.evaluateAll((els) => els.map((e) => e.dataset.name))).sort(), [ADMIN.name, MEMBER.name]);
    const member = page.locator(`[data-testid=user-row][data-name=${MEMBER.name}]`);
    assert.equal(await page.locator(`[data-testid=user-row][data-name=${ADMIN.name}] [data-testid=user-toggle]`).count(), 0,
      'admins cannot disable themselves from the UI');

    await member.getByTestId('user-toggle').click();
    await member.getByTestId('user-status').filter({ hasText: 'Disabled' }).waitFor();
    await member.getByTestId('user-toggle').filter({ hasText: 'Enable' }).click();
    await member.getByTestId('user-status').filter({ hasText: 'Active' }).waitFor();
    await page.reload();
    await member.getByTestId('user-status').filter({ hasText: 'Active' }).waitFor();
    await screenshots(page, 'admin-users');
  });

  it('resets a password through the dialog', async () => {
    const { page } = a;
    const member = page.locator(`[data-testid=user-row][data-name=${MEMBER.name}]`);
    await member.getByTestId('user-reset').click();
    const dialog = page.locator('#reset-dialog');
    await dialog.waitFor();
    await page.fill('#reset-password', 'short');
    await page.fill('#reset-confirm', 'short');
    await page.press('#reset-confirm', 'Enter');
    await page.getByTestId('reset-error').filter({ hasText: '8 characters' }).waitFor();
    await screenshots(page, 'reset-dialog');
    MEMBER.password = 'a-fresh-password';
    await page.fill('#reset-password', MEMBER.password);
    await page.fill('#reset-confirm', MEMBER.password);
    await page.click('[data-testid=reset-submit]');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByTestId('users-status').filter({ hasText: 'New password' }).waitFor();
  });

  it('signs the member in again after the reset and out from the menu', async () => {
    const { page } = b;
    // The reset revoked the member's sessions: the app notices and goes to /login.
    await go(page, '/app/devices');
    await page.waitForURL('**/login');
    await page.fill('#login-name', MEMBER.name);
    await page.fill('#login-password', 'wrong-password');
    await page.press('#login-password', 'Enter');
    const error = page.getByTestId('login-error');
    await error.waitFor();
    assert.ok((await error.textContent()).trim().length > 5);
    await screenshots(page, 'login');
    await page.fill('#login-password', MEMBER.password);
    await page.press('#login-password', 'Enter');
    await page.waitForURL(IN_CHAT);

    await page.click('#user-menu-button');
    await page.click('[data-testid=sign-out]');
    await page.waitForURL('**/login');
    await go(page, '/app/devices');
    await page.waitForURL('**/login');
  });

  it('opens and closes the user menu with the keyboard', async () => {
    const { page } = a;
    await page.focus('#user-menu-button');
    await page.keyboard.press('Enter');
    await page.locator('#user-menu').waitFor();
    assert.equal(await page.getAttribute('#user-menu-button', 'aria-expanded'), 'true');
    await page.keyboard.press('Escape');
    await page.locator('#user-menu').waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'user-menu-button');
  });

  it('logged no errors and no CSP violations', () => {
    assert.deepEqual([...a.problems, ...(b?.problems || [])], []);
  });
});
