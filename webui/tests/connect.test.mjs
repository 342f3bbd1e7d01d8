// The Connect page lists every address Hearth answers at (here its LAN address on the test's
// veth and its mDNS name), with a QR code each, and checks from the browser which of them it
// reaches; the admin page's tailnet panel says how to join a tailnet when Hearth is on none.
// Runs its own hearth listening on every interface (run.sh's listens on loopback only).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callAPI, openBrowser, screenshots } from './lib.mjs';

const BIN = process.env.HEARTH_BIN;
const PORT = 18444;
const BASE = `http://127.0.0.1:${PORT}`;
const LAN = `http://10.77.0.1:${PORT}`; // run.sh's veth address

async function startHearth() {
  const data = await mkdtemp(join(tmpdir(), 'hearth-connect-'));
  const proc = spawn(BIN, ['serve', '--data', data, '--listen', `:${PORT}`, '--tls', 'off', '--mdns=true',
    '--tailnet=false', '--http-listen', '127.0.0.1:18081', '--turn-listen', '127.0.0.1:13479'],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HEARTH_URL: '' } });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(BASE + '/healthz')).ok) break;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = execFileSync(BIN, ['admin', 'setup-token', '--data', data]).toString().trim();
  return {
    token,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      await rm(data, { recursive: true, force: true });
    },
  };
}

describe('Connect a device', () => {
  let hearth;
  let browser;
  before(async () => {
    assert.ok(BIN, 'HEARTH_BIN must be set (run webui/tests/run.sh)');
    hearth = await startHearth();
    browser = await openBrowser('connect');
    await browser.page.goto(BASE + '/login');
    const res = await callAPI(browser.page, 'POST', '/setup', { token: hearth.token, name: 'mum', password: 'correct horse' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
  after(async () => {
    await browser?.close();
    await hearth?.stop();
  });

  it('lists every address with a QR code and whether this browser reaches it', async () => {
    const { page } = browser;
    await page.goto(BASE + '/app/chat');
    await page.getByTestId('nav-connect').click();
    await page.waitForURL('**/app/connect');
    await page.getByRole('heading', { name: 'Connect a device' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=address]').length > 0 &&
      ![...document.querySelectorAll('[data-testid=address-status]')].some((s) => s.dataset.state === 'checking'));
    const rows = await page.getByTestId('address').evaluateAll((els) => els.map((el) => ({
      kind: el.dataset.kind, url: el.dataset.url,
      state: el.querySelector('[data-testid=address-status]').dataset.state,
      qr: el.querySelector('img.qr').naturalWidth,
    })));
    const lan = rows.find((r) => r.url === LAN);
    assert.ok(lan, `no row for ${LAN}: ${JSON.stringify(rows)}`);
    assert.equal(lan.kind, 'lan');
    assert.equal(lan.state, 'trusted', 'the browser reaches the LAN address');
    const mdns = rows.find((r) => r.kind === 'mdns');
    assert.ok(mdns && /^http:\/\/hearth(-\d+)?\.local:18444$/.test(mdns.url), `mDNS row: ${JSON.stringify(rows)}`);
    for (const r of rows) assert.ok(r.qr > 0, `QR code for ${r.url} did not load`);
    assert.equal(await page.getByTestId('trust-link').count(), 0, 'no trust link without a local CA');
    await screenshots(page, 'connect', undefined, ['phone', 'desktop']);
    // A phone's bottom bar has no room for it: the user menu leads there.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await page.getByTestId('nav-connect').isVisible(), false);
    await page.goto(BASE + '/app/chat');
    await page.locator('#user-menu-button').click();
    await page.getByTestId('menu-connect').click();
    await page.waitForURL('**/app/connect');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('tells the admin how to join a tailnet', async () => {
    const { page } = browser;
    await page.goto(BASE + '/app/admin');
    const state = page.getByTestId('tailnet-state');
    await state.filter({ hasText: 'not on a tailnet' }).waitFor();
    await screenshots(page, 'admin-tailnet', page.getByTestId('tailnet-section'), ['phone', 'desktop']);
  });

  it('offers no tailnet sign-in on the LAN', async () => {
    const other = await openBrowser('connect-login');
    try {
      await other.page.goto(BASE + '/login');
      await other.page.getByTestId('login-submit').waitFor();
      await new Promise((r) => setTimeout(r, 300)); // the tailnet check has answered 404 by now
      assert.equal(await other.page.getByTestId('tailnet-sign-in').count(), 0);
    } finally {
      await other.close();
    }
  });

  it('logged no errors and no CSP violations', () => {
    // The mDNS name does not resolve in this browser (no mDNS resolver in the test's
    // namespace): the page's check of it fails on purpose.
    const unexpected = browser.problems.filter((p) => !/\.local:18444|ERR_NAME_NOT_RESOLVED/.test(p));
    assert.deepEqual(unexpected, []);
  });
});
