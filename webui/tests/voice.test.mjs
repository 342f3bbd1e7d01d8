// Browser test of voice channels against a real Hearth server: three Chromium browsers with fake
// microphones join #lounge; audio flows to the listeners only while push-to-talk is held.
// Env as for shell.test.mjs (run.sh starts a fresh server and sets it).

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { BASE, DESKTOP, OUT, PHONE, SETUP_TOKEN, callAPI, go } from './lib.mjs';

const ALEX = { name: 'alex', display: 'Alex Admin', password: 'hearth-admin-pw' };
const SAM = { name: 'sam', display: 'Sam <b>Member</b>', password: 'hearth-member-pw' };
const KIM = { name: 'kim', display: 'Kim', password: 'hearth-kim-pw-1' };

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
];

/** As lib.mjs's openBrowser, with a fake microphone: watched for console errors and CSP violations. */
async function openBrowser(label, { microphone = true } = {}) {
  const profile = await mkdtemp(join(tmpdir(), `hearth-voice-${label}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: DESKTOP,
  });
  if (microphone) await context.grantPermissions(['microphone'], { origin: BASE });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  const browser = { context, page, problems, offline: false };
  const networkDown = (text) => browser.offline && /ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED/.test(text);
  page.on('console', (msg) => {
    const text = msg.text();
    if (networkDown(text)) return;
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    if (msg.type() === 'error' || msg.type() === 'warning' || /Content Security Policy/i.test(text)) {
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
    if (res.status() >= 500 || (res.status() >= 400 && !path.startsWith('/api/'))) problems.push(`${label} ${res.status()} for ${path}`);
  });
  page.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText || '';
    if (reason !== 'net::ERR_ABORTED' && !networkDown(reason)) problems.push(`${label} request failed: ${req.url()} ${reason}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  if (!microphone) {
    // As if the person had blocked the microphone for this site.
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
  }
  browser.close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return browser;
}

/** Phone and desktop, light and dark: voice-NAME-{phone,phone-dark,desktop,desktop-dark}.png. */
async function screenshots(page, name, target) {
  for (const [suffix, viewport, colorScheme] of [['phone', PHONE, 'light'], ['phone-dark', PHONE, 'dark'],
    ['desktop', DESKTOP, 'light'], ['desktop-dark', DESKTOP, 'dark']]) {
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme });
    await page.waitForTimeout(250); // colour transitions
    if (target) await target.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    else await page.evaluate(() => window.scrollTo(0, 0));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} at ${suffix} is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(OUT, `voice-${name}-${suffix}.png`) });
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

/** Audio bytes received so far by the page's call (0 without one). */
function bytesIn(page) {
  return page.evaluate(async () => {
    const pc = window.__hearthVoice?.pc;
    if (!pc) return 0;
    let n = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.bytesReceived || 0;
    });
    return n;
  });
}

/** Bytes received over ms milliseconds. */
async function growth(page, ms) {
  const before = await bytesIn(page);
  await page.waitForTimeout(ms);
  return (await bytesIn(page)) - before;
}

/** Waits until the page has received at least min more bytes (audio is flowing). */
async function waitForAudio(page, min = 4000, timeout = 15000) {
  const start = await bytesIn(page);
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = (await bytesIn(page)) - start;
    if (got >= min) return got;
    if (Date.now() > deadline) assert.fail(`no audio arrived: ${got} bytes in ${timeout} ms`);
    await page.waitForTimeout(200);
  }
}

/** Waits until the call's incoming audio stays flat (a little slack for packets in flight). */
async function waitForSilence(page, timeout = 8000) {
  const deadline = Date.now() + timeout;
  let last = Infinity;
  while (Date.now() < deadline) {
    last = await growth(page, 1500);
    if (last <= 400) return last;
  }
  assert.fail(`audio kept arriving after release: ${last} bytes in 1.5 s`);
}

const room = (page) => page.locator('[data-testid=voice-room][data-name=lounge]');
const person = (page, userId) => room(page).locator(`[data-testid=voice-participant][data-user="${userId}"]`);

async function joinLounge(page) {
  await room(page).getByTestId('voice-join').click();
  await page.locator('[data-testid=voice-status][data-state=connected]').waitFor({ timeout: 20000 });
}

describe('Hearth voice', () => {
  let a; // Alex, the admin: the talker
  let b; // Sam: a listener
  let c; // Kim: microphone blocked, listens only
  const ids = {};

  before(async () => {
    await mkdir(OUT, { recursive: true });
    a = await openBrowser('alex');
    b = await openBrowser('sam');
    c = await openBrowser('kim', { microphone: false });

    await go(a.page, '/login');
    const setup = await callAPI(a.page, 'POST', '/setup',
      { token: SETUP_TOKEN, name: ALEX.name, display_name: ALEX.display, password: ALEX.password });
    assert.ok(setup.status < 300, JSON.stringify(setup.body));
    const csrf = setup.body.csrf;
    ids.alex = setup.body.user.id;
    for (const [who, u] of [[b, SAM], [c, KIM]]) {
      const added = await callAPI(a.page, 'POST', '/admin/users',
        { name: u.name, display_name: u.display, password: u.password, role: 'member' }, csrf);
      assert.ok(added.status < 300, JSON.stringify(added.body));
      await go(who.page, '/login');
      const login = await callAPI(who.page, 'POST', '/auth/login', { name: u.name, password: u.password });
      assert.ok(login.status < 300, JSON.stringify(login.body));
      ids[u.name] = login.body.user.id;
    }
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await c?.close();
  });

  it('lists the voice channels with nobody in them', async () => {
    for (const { page } of [a, b, c]) {
      await go(page, '/app/voice');
      await room(page).waitFor();
      await page.locator('[data-testid=live][data-state=online]').waitFor();
    }
    assert.equal(await a.page.title(), 'Voice \u00b7 Hearth');
    assert.equal(await room(a.page).getByTestId('voice-participant').count(), 0);
    assert.ok(await a.page.getByTestId('voice-call').isHidden());
    await screenshots(a.page, 'empty');
  });

  it('joins two people with one click each and shows them to everyone', async () => {
    await joinLounge(b.page);
    await joinLounge(a.page);
    for (const { page } of [a, b, c]) {
      await person(page, ids.alex).waitFor();
      await person(page, ids.sam).waitFor();
    }
    // Names are shown as text, never as markup.
    assert.equal(await person(c.page, ids.sam).locator('b').count(), 0);
    assert.match(await person(c.page, ids.sam).textContent(), /Sam <b>Member<\/b>/);
    assert.equal(await person(a.page, ids.alex).getAttribute('data-me'), 'true');
    assert.ok(await person(a.page, ids.sam).getByTestId('voice-volume').isVisible(), 'a volume slider for others');
    assert.ok(await person(a.page, ids.alex).getByTestId('voice-volume').isHidden(), 'none for yourself');
    // Joined muted: nothing flows while nobody holds push-to-talk.
    assert.ok((await growth(b.page, 1500)) <= 400, 'no audio before anyone talks');
  });

  it('says so when the microphone is blocked and joins to listen', async () => {
    await room(c.page).getByTestId('voice-join').click();
    await c.page.getByTestId('voice-message').filter({ hasText: 'microphone is blocked' }).waitFor();
    await c.page.locator('[data-testid=voice-status][data-state=connected]').waitFor({ timeout: 20000 });
    assert.ok(await c.page.getByTestId('voice-ptt').isDisabled());
    await person(a.page, ids.kim).waitFor();
    await screenshots(c.page, 'mic-blocked');
  });

  it('carries audio only while the talker holds the button', async () => {
    const ptt = a.page.getByTestId('voice-ptt');
    await ptt.hover();
    await a.page.mouse.down();
    await a.page.getByTestId('voice-ptt').filter({ hasText: 'Talking' }).waitFor();
    const got = await waitForAudio(b.page);
    await waitForAudio(c.page);
    assert.ok(got > 0);
    await person(b.page, ids.alex).and(b.page.locator('[data-speaking=true]')).waitFor({ timeout: 10000 });
    await person(b.page, ids.alex).locator('[data-flag=speaking]').waitFor();
    await screenshots(b.page, 'listening');
    await screenshots(b.page, 'listening-people', room(b.page));
    await screenshots(a.page, 'talking');
    await a.page.mouse.up();
    await a.page.getByTestId('voice-ptt').filter({ hasText: 'Hold to talk' }).waitFor();
    const quiet = await waitForSilence(b.page);
    await waitForSilence(c.page);
    console.log(`# listener: +${got} audio bytes while push-to-talk was held, +${quiet} in 1.5 s after release`);
    await person(b.page, ids.alex).and(b.page.locator('[data-speaking=false]')).waitFor({ timeout: 5000 });
    assert.equal(await person(b.page, ids.alex).locator('[data-flag=muted]').count(), 1);
  });

  it('talks while Space is held', async () => {
    await a.page.keyboard.down('Space');
    await waitForAudio(b.page);
    await person(b.page, ids.alex).and(b.page.locator('[data-speaking=true]')).waitFor({ timeout: 10000 });
    await a.page.keyboard.up('Space');
    await waitForSilence(b.page);
  });

  it('shows who holds the floor in one-talker mode', async () => {
    await a.page.getByTestId('voice-one-talker').check();
    await b.page.locator('[data-testid=voice-one-talker]:checked').waitFor();
    await b.page.getByTestId('voice-floor').filter({ hasText: 'Nobody has the floor' }).waitFor();
    await a.page.keyboard.down('Space');
    await b.page.getByTestId('voice-floor').filter({ hasText: 'Alex Admin has the floor' }).waitFor();
    await a.page.getByTestId('voice-floor').filter({ hasText: 'You have the floor' }).waitFor();
    await waitForAudio(b.page);
    await screenshots(b.page, 'floor');
    await a.page.keyboard.up('Space');
    await b.page.getByTestId('voice-floor').filter({ hasText: 'Nobody has the floor' }).waitFor();
    await a.page.getByTestId('voice-one-talker').uncheck();
    await b.page.locator('[data-testid=voice-one-talker]:not(:checked)').waitFor();
  });

  it('rejoins by itself after a network blip', async () => {
    b.offline = true;
    await b.context.setOffline(true);
    await b.page.locator('[data-testid=live][data-state=offline]').waitFor();
    await b.page.locator('[data-testid=voice-status][data-state=reconnecting]').waitFor();
    await person(a.page, ids.sam).waitFor({ state: 'detached' }); // the appliance ended that call
    await b.context.setOffline(false);
    await b.page.locator('[data-testid=voice-status][data-state=connected]').waitFor({ timeout: 30000 });
    b.offline = false;
    await person(a.page, ids.sam).waitFor();
    await a.page.keyboard.down('Space');
    await waitForAudio(b.page);
    await a.page.keyboard.up('Space');
    await waitForSilence(b.page);
  });

  it('keeps a per-person volume', async () => {
    const slider = person(b.page, ids.alex).getByTestId('voice-volume');
    await slider.fill('40');
    const volume = await b.page.evaluate(() => [...document.querySelectorAll('[data-testid=voice-audio] audio')].map((el) => el.volume));
    assert.ok(volume.length > 0, 'an audio element per receive slot');
    assert.ok(volume.includes(0.4), `the talker's slot plays at 40%: ${volume}`);
  });

  it('leaves and cleans up', async () => {
    await b.page.getByTestId('voice-leave').click();
    await person(a.page, ids.sam).waitFor({ state: 'detached' });
    assert.ok(await b.page.getByTestId('voice-call').isHidden());
    assert.equal(await b.page.evaluate(() => window.__hearthVoice.pc), null);
    assert.equal(await b.page.locator('[data-testid=voice-audio] audio').count(), 0);
    await room(c.page).getByTestId('voice-join').click(); // the button says Leave now
    await a.page.getByTestId('voice-leave').click();
    for (const { page } of [a, b, c]) {
      await room(page).getByTestId('voice-participant').first().waitFor({ state: 'detached' });
      await room(page).locator('.voice-nobody').waitFor();
    }
    assert.equal(await a.page.evaluate(() => window.__hearthVoice.pc), null);
  });

  it('logged no errors', () => {
    assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
  });
});
