// Helpers shared by the browser tests: browsers watched for problems, screenshots, API calls.
// Env: HEARTH_URL (http://127.0.0.1:PORT), SETUP_TOKEN, OUT (screenshot dir), CHROMIUM (optional).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = required('HEARTH_URL').replace(/\/$/, '');
export const SETUP_TOKEN = required('SETUP_TOKEN');
export const OUT = process.env.OUT || new URL('./out', import.meta.url).pathname;

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run webui/tests/run.sh)`);
  return value;
}

/**
 * A browser with its own profile directory (so its own cookies), watched for problems:
 * console errors, CSP violations, page errors, failed requests, 5xx answers, and any
 * alert/confirm/prompt dialog (nothing in Hearth opens one, so one means injected script).
 * Set `offline = true` on the result while its context is offline: network failures are
 * expected then.
 */
export async function openBrowser(label, { permissions = [], acceptDownloads = false, args = [] } = {}) {
  const profile = await mkdtemp(join(tmpdir(), `hearth-${label}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    viewport: DESKTOP,
    acceptDownloads,
  });
  if (permissions.length) await context.grantPermissions(permissions, { origin: BASE });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  const browser = { context, page, problems, offline: false };
  const networkDown = (text) => browser.offline && /ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED/.test(text);
  page.on('console', (msg) => {
    const text = msg.text();
    // Chromium logs every non-2xx fetch; the API answers 4xx on purpose in these flows.
    // Static files and server errors are checked through 'response' below instead.
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    if (networkDown(text)) return;
    if (msg.type() === 'error' || /Content Security Policy/i.test(text)) {
      problems.push(`${label} console ${msg.type()}: ${text} (${msg.location().url})`);
    }
  });
  page.on('pageerror', (err) => problems.push(`${label} page error: ${err.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`${label} unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('response', (res) => {
    const path = new URL(res.url()).pathname;
    if (res.status() >= 500 || (res.status() >= 400 && !path.startsWith('/api/'))) {
      problems.push(`${label} ${res.status()} for ${path}`);
    }
  });
  page.on('requestfailed', (req) => {
    // Chromium reports ERR_ABORTED for 204 answers and for requests cut short by navigation.
    const reason = req.failure()?.errorText || '';
    if (reason !== 'net::ERR_ABORTED' && !networkDown(reason)) problems.push(`${label} request failed: ${req.url()} ${reason}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  browser.close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return browser;
}

/**
 * Saves NAME-phone.png, NAME-phone-dark.png and NAME-desktop.png of the current page,
 * scrolled to the top or to `target` (a locator), and checks nothing overflows sideways.
 * `only` limits the shots to some of those suffixes.
 */
export async function screenshots(page, name, target, only) {
  const shots = [['phone', PHONE, 'light'], ['phone-dark', PHONE, 'dark'], ['desktop', DESKTOP, 'light']]
    .filter(([suffix]) => !only || only.includes(suffix));
  for (const [suffix, viewport, colorScheme] of shots) {
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme });
    if (target) await target.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    else await page.evaluate(() => window.scrollTo(0, 0));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} at ${suffix} is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(OUT, `${name}-${suffix}.png`) });
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

export async function go(page, path) {
  await page.goto(BASE + path);
}

/** Calls the JSON API from inside the page (with its cookie). Returns { status, body }. */
export async function callAPI(page, method, path, body, csrf = '1') {
  return page.evaluate(async ([m, p, b, c]) => {
    const res = await fetch('/api/v1' + p, {
      method: m,
      headers: { 'Content-Type': 'application/json', 'X-Hearth-CSRF': c },
      body: b === undefined ? undefined : JSON.stringify(b),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }, [method, path, body, csrf]);
}
