// Browser test of chat against a real Hearth server: two people in two Chromium browsers.
// Env as for shell.test.mjs (run.sh starts a fresh server and sets it).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { OUT, PHONE, SETUP_TOKEN, callAPI, go, openBrowser, screenshots as allShots } from './lib.mjs';

const ALEX = { name: 'alex', display: 'Alex Admin', password: 'hearth-admin-pw' };
const SAM = { name: 'sam', display: 'Sam Member', password: 'hearth-member-pw' };
const IN_CHAT = /\/app\/chat\/([^/]+)$/;
const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_FILE = '<script>.txt';

/** A small RGB PNG with a gradient, made here so the test needs no files. */
function makePNG(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([200 - (x * 100) / width, 80 + (y * 120) / height, 60 + (x * 150) / width], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * Runs before any page script: records system notifications instead of showing them (the
 * permission itself is the real, granted one), and lets the test pretend the tab is hidden,
 * which headless Chromium never is.
 */
function backgroundStub() {
  const Real = window.Notification;
  let hidden = false;
  window.__notifications = [];
  class RecordedNotification {
    static get permission() {
      return Real ? Real.permission : 'denied';
    }
    static requestPermission(...args) {
      return Real.requestPermission(...args);
    }
    constructor(title, options = {}) {
      window.__notifications.push({ title, body: options.body || '' });
    }
    close() {}
  }
  window.Notification = RecordedNotification;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  };
}

/** Screenshots as lib.mjs takes them, without the composer's focus (phones never focus it by themselves). */
async function screenshots(page, ...args) {
  await page.evaluate(() => {
    if (document.activeElement?.id === 'composer-input') document.activeElement.blur();
  });
  await allShots(page, ...args);
}

const message = (page, text) => page.locator('[data-testid=message]', { hasText: text });
const channelLink = (page, name) => page.locator(`[data-testid=channel-link][data-name="${name}"]`);

async function send(page, text) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
  await message(page, text).first().waitFor();
  await page.getByTestId('pending').waitFor({ state: 'detached' });
}

async function openActions(page, text) {
  const msg = message(page, text).last();
  await msg.hover();
  await msg.getByTestId('message-actions').click();
  await page.getByTestId('message-menu').waitFor();
  return msg;
}

describe('Hearth chat', () => {
  let a; // Alex, the admin
  let b; // Sam, a member
  let generalId = '';
  let csrfA = '';

  before(async () => {
    await mkdir(OUT, { recursive: true });
    a = await openBrowser('alex');
    b = await openBrowser('sam', { permissions: ['notifications'] });
    await b.page.addInitScript(backgroundStub);

    // The household, made through the API: Alex sets up the box and adds Sam.
    await go(a.page, '/login');
    const setup = await callAPI(a.page, 'POST', '/setup',
      { token: SETUP_TOKEN, name: ALEX.name, display_name: ALEX.display, password: ALEX.password });
    assert.ok(setup.status < 300, JSON.stringify(setup.body));
    csrfA = setup.body.csrf;
    const added = await callAPI(a.page, 'POST', '/admin/users',
      { name: SAM.name, display_name: SAM.display, password: SAM.password, role: 'member' }, csrfA);
    assert.ok(added.status < 300, JSON.stringify(added.body));
  });

  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('lands both people on #general', async () => {
    await go(a.page, '/app');
    await a.page.waitForURL(IN_CHAT);
    generalId = a.page.url().match(IN_CHAT)[1];
    await a.page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();

    await go(b.page, '/login');
    await b.page.fill('#login-name', SAM.name);
    await b.page.fill('#login-password', SAM.password);
    await b.page.press('#login-password', 'Enter');
    await b.page.waitForURL(IN_CHAT);
    assert.equal(b.page.url().match(IN_CHAT)[1], generalId);
    for (const { page } of [a, b]) {
      await page.locator('[data-testid=live][data-state=online]').waitFor();
      assert.equal(await page.title(), '#general · Hearth');
    }
  });

  it('delivers a message live to the other person', async () => {
    await send(a.page, 'Hello from Alex');
    const seen = message(b.page, 'Hello from Alex');
    await seen.waitFor();
    assert.equal(await seen.getByTestId('message-author').textContent(), ALEX.display);
  });

  it('shows who is typing', async () => {
    await a.page.getByTestId('composer').pressSequentially('Still ther', { delay: 20 });
    await b.page.getByTestId('typing').filter({ hasText: `${ALEX.display} is typing` }).waitFor();
    await a.page.getByTestId('composer').fill('');
  });

  it('creates a channel that appears for everyone', async () => {
    const { page } = a;
    await page.getByTestId('new-channel').click();
    const dialog = page.getByTestId('new-channel-dialog');
    await dialog.waitFor();
    await page.fill('#new-channel-name', 'Bad Name!');
    await page.press('#new-channel-name', 'Enter');
    await page.getByTestId('new-channel-error').filter({ hasText: 'lowercase' }).waitFor();
    await page.fill('#new-channel-name', 'random');
    await page.fill('#new-channel-topic', 'Anything goes');
    await screenshots(page, 'chat-new-channel');
    await page.getByTestId('new-channel-submit').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('conv-title').filter({ hasText: 'random' }).waitFor();
    assert.match(page.url(), IN_CHAT);

    await channelLink(b.page, 'random').click();
    await b.page.getByTestId('conv-title').filter({ hasText: 'random' }).waitFor();
    assert.equal(await b.page.getByTestId('conv-topic').textContent(), 'Anything goes');
  });

  it('raises a mention badge, the bell and a background alert', async () => {
    // Sam is on another page, with the tab in the background.
    await b.page.getByTestId('nav-profile').click();
    await b.page.waitForURL('**/app/profile');
    await b.page.evaluate(() => window.__setHidden(true));
    const { page } = a;
    await channelLink(page, 'general').click();
    await page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();
    const composer = page.getByTestId('composer');
    await composer.pressSequentially('@sa');
    const option = page.locator('[data-testid=mention-option][data-insert=sam]');
    await option.waitFor();
    // Sam's tab is in the background, so Sam shows as away.
    await option.locator('.presence[data-state=idle]').waitFor();
    assert.equal(await composer.getAttribute('aria-expanded'), 'true');
    await allShots(page, 'chat-mention', null, ['desktop']); // with the suggestions open
    await composer.press('Enter'); // takes the suggestion
    assert.equal(await composer.inputValue(), '@sam ');
    await composer.pressSequentially('can you check the boiler?');
    await composer.press('Enter');
    await message(page, 'check the boiler').waitFor();

    await b.page.getByTestId('bell-count').filter({ hasText: '1' }).waitFor();
    await b.page.getByTestId('nav-chat-badge').filter({ hasText: '1' }).waitFor();
    assert.equal(await b.page.title(), '(1) Profile · Hearth', 'the tab title counts it');
    await b.page.waitForFunction(() => window.__notifications.length > 0);
    const [alert] = await b.page.evaluate(() => window.__notifications);
    assert.equal(alert.title, `${ALEX.display} mentioned you in #general`);
    assert.match(alert.body, /boiler/);
    await b.page.evaluate(() => window.__setHidden(false));

    await b.page.setViewportSize(PHONE);
    await go(b.page, '/app/chat');
    const link = channelLink(b.page, 'general');
    await link.getByTestId('mention-badge').filter({ hasText: '@1' }).waitFor();
    await link.getByTestId('unread-badge').filter({ hasText: '1' }).waitFor();
    await screenshots(b.page, 'chat-list', null, ['phone', 'phone-dark']);
  });

  it('lists the mention under notifications and jumps to it', async () => {
    const { page } = b;
    await page.getByTestId('head-notifications').click();
    await page.waitForURL('**/app/notifications');
    const note = page.getByTestId('notification').filter({ hasText: 'boiler' });
    await note.waitFor();
    assert.equal(await note.getAttribute('data-read'), 'false');
    await page.getByTestId('alerts-on').waitFor(); // permission was granted to this browser
    await screenshots(page, 'chat-notifications');
    await note.click();
    await page.waitForURL(new RegExp(`/app/chat/${generalId}/\\d+$`));
    const target = message(page, 'boiler');
    await page.waitForFunction((el) => el.classList.contains('flash') || document.activeElement === el, await target.elementHandle());
    // Seeing it marks it read: badge and bell go away.
    await page.getByTestId('bell-count').waitFor({ state: 'hidden' });
    await channelLink(page, 'general').getByTestId('mention-badge').waitFor({ state: 'detached' });
  });

  it('shows an edit live, marked as edited', async () => {
    const { page } = a;
    await openActions(page, 'boiler');
    await page.getByTestId('action-edit').click();
    const input = page.getByTestId('edit-input');
    await input.waitFor();
    await input.fill('@sam can you check the boiler today?');
    await input.press('Enter');
    await message(page, 'boiler today').getByTestId('edited').waitFor();
    const seen = message(b.page, 'boiler today');
    await seen.getByTestId('edited').waitFor();
    assert.equal(await message(b.page, 'check the boiler?').count(), 0);
  });

  it('shows a reaction live and toggles one\'s own', async () => {
    const msg = await openActions(b.page, 'boiler today');
    await screenshots(b.page, 'chat-menu', msg);
    await b.page.getByTestId('react-👍').click();
    await b.page.getByTestId('message-menu').waitFor({ state: 'detached' });
    const chip = message(a.page, 'boiler today').locator('[data-testid=reaction][data-emoji="👍"]');
    await chip.filter({ hasText: '1' }).waitFor();
    assert.equal(await chip.getAttribute('aria-pressed'), 'false');
    await chip.click();
    await message(a.page, 'boiler today').locator('[data-testid=reaction][data-emoji="👍"][aria-pressed=true]')
      .filter({ hasText: '2' }).waitFor();
    await message(b.page, 'boiler today').locator('[data-testid=reaction][data-emoji="👍"]').filter({ hasText: '2' }).waitFor();
  });

  it('quotes the original in a reply and jumps to it', async () => {
    const { page } = b;
    await openActions(page, 'boiler today');
    await page.getByTestId('action-reply').click();
    await page.getByTestId('reply-bar').filter({ hasText: ALEX.display }).waitFor();
    await send(page, 'On it, after lunch');
    const reply = message(a.page, 'On it, after lunch');
    await reply.waitFor();
    const quote = reply.getByTestId('quote');
    assert.match(await quote.textContent(), /boiler today/);
    await quote.click();
    const original = message(a.page, 'boiler today').first();
    await a.page.waitForFunction((el) => document.activeElement === el, await original.elementHandle());
  });

  it('uploads a picture that the other person sees inline', async () => {
    const { page } = a;
    await page.getByTestId('file-input').setInputFiles({ name: 'garden.png', mimeType: 'image/png', buffer: makePNG(320, 200) });
    await page.getByTestId('upload').filter({ hasText: 'garden.png' }).getByTestId('upload-status')
      .filter({ hasText: 'Ready' }).waitFor();
    await page.getByTestId('composer').fill('The garden this morning');
    await screenshots(page, 'chat-upload', null, ['desktop']);
    await page.getByTestId('composer').press('Enter');
    await page.getByTestId('uploads').waitFor({ state: 'hidden' });
    const img = message(b.page, 'The garden this morning').getByTestId('attachment-image');
    await img.waitFor();
    await b.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    assert.match(await img.getAttribute('src'), /thumb=1/);
    assert.equal(await img.getAttribute('alt'), 'garden.png');
  });

  it('shows hostile text and file names as plain text', async () => {
    const { page } = a;
    await send(page, HOSTILE);
    await page.getByTestId('file-input').setInputFiles({ name: HOSTILE_FILE, mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.getByTestId('upload-status').filter({ hasText: 'Ready' }).waitFor();
    await page.getByTestId('composer').press('Enter');
    await page.getByTestId('uploads').waitFor({ state: 'hidden' });

    for (const { page: p } of [a, b]) {
      const text = p.getByTestId('message-text').filter({ hasText: HOSTILE });
      await text.waitFor();
      assert.equal((await text.textContent()).trim(), HOSTILE);
      const file = p.getByTestId('attachment-name').filter({ hasText: HOSTILE_FILE });
      await file.waitFor();
      assert.equal(await file.textContent(), HOSTILE_FILE);
      assert.equal(await p.locator('img[src="x"]').count(), 0, 'no image element came from the text');
      assert.equal(await p.locator('.messages script').count(), 0);
    }
    await screenshots(b.page, 'chat-general');
  });

  it('finds the message with search and opens it', async () => {
    const { page } = b;
    await page.getByTestId('head-search').click();
    await page.waitForURL('**/app/search');
    await page.fill('#search-q', 'boiler');
    await page.press('#search-q', 'Enter');
    const result = page.getByTestId('search-result').filter({ hasText: 'boiler today' });
    await result.waitFor();
    assert.equal(await result.locator('mark').first().textContent(), 'boiler');
    await page.selectOption('#search-author', SAM.name);
    await page.click('[data-testid=search-submit]');
    await page.getByTestId('search-status').filter({ hasText: 'No messages' }).waitFor();
    await page.selectOption('#search-author', ALEX.name);
    await page.click('[data-testid=search-submit]');
    await result.waitFor();
    await screenshots(page, 'chat-search');
    await result.click();
    await page.waitForURL(new RegExp(`/app/chat/${generalId}/\\d+$`));
    await message(page, 'boiler today').first().waitFor();
  });

  it('opens a direct message that the other person is told about', async () => {
    const { page } = b;
    await page.getByTestId('new-dm').click();
    const dialog = page.getByTestId('dm-dialog');
    await dialog.waitFor();
    await page.locator(`[data-testid=pick-user][data-name=${ALEX.name}]`).click();
    await screenshots(page, 'chat-dm-dialog');
    await page.getByTestId('dm-submit').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('conv-title').filter({ hasText: ALEX.display }).waitFor();
    await send(page, 'psst, a secret');

    const link = a.page.locator(`[data-testid=channel-link][data-name=${SAM.name}]`);
    await link.getByTestId('mention-badge').waitFor(); // direct messages count like mentions
    await link.click();
    await message(a.page, 'psst, a secret').waitFor();
    await a.page.getByTestId('bell-count').waitFor({ state: 'hidden' });
    await screenshots(a.page, 'chat-dm');
  });

  it('changes a channel\'s topic in its settings', async () => {
    const { page } = a;
    await channelLink(page, 'random').click();
    await page.getByTestId('channel-settings').click();
    const dialog = page.getByTestId('settings-dialog');
    await dialog.waitFor();
    await page.fill('#settings-topic', 'Plans for the weekend');
    await screenshots(page, 'chat-settings');
    await page.getByTestId('settings-save').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('conv-topic').filter({ hasText: 'Plans for the weekend' }).waitFor();
    await channelLink(b.page, 'random').click();
    await b.page.getByTestId('conv-topic').filter({ hasText: 'Plans for the weekend' }).waitFor();
  });

  it('lets the admin make a group that can be mentioned', async () => {
    const { page } = a;
    await page.getByTestId('nav-admin').click();
    await page.waitForURL('**/app/admin');
    const section = page.getByTestId('groups-section');
    await section.waitFor();
    await page.fill('#group-name', 'kids');
    await section.locator(`[data-testid=pick-user][data-name=${SAM.name}]`).click();
    await page.getByTestId('group-save').click();
    const row = page.locator('[data-testid=group-row][data-name=kids]');
    await row.filter({ hasText: SAM.display }).waitFor();
    await screenshots(page, 'chat-admin-groups', section);

    await page.getByTestId('nav-chat').click();
    await page.getByTestId('conv-title').waitFor();
    const composer = page.getByTestId('composer');
    await composer.pressSequentially('@ki');
    await page.locator('[data-testid=mention-option][data-insert=kids]').waitFor();
    await composer.press('Escape');
    await page.getByTestId('mention-list').waitFor({ state: 'hidden' });
    await composer.fill('');
  });

  it('keeps a private channel to its members until a group is let in', async () => {
    const { page } = a;
    await page.getByTestId('new-channel').click();
    await page.getByTestId('new-channel-dialog').waitFor();
    await page.fill('#new-channel-name', 'parents');
    await page.check('#new-channel-private');
    await page.locator('#new-channel-members-options').waitFor();
    await page.getByTestId('new-channel-submit').click();
    await page.getByTestId('conv-title').filter({ hasText: 'parents' }).waitFor();
    await send(page, 'Only for us');
    await b.page.waitForTimeout(1000);
    assert.equal(await channelLink(b.page, 'parents').count(), 0, 'Sam does not see a private channel');

    await page.getByTestId('channel-settings').click();
    await page.getByTestId('settings-dialog').waitFor();
    await page.locator('[data-testid=pick-group][data-name=kids] input').check();
    await page.getByTestId('settings-save').click();
    await page.getByTestId('settings-dialog').waitFor({ state: 'detached' });
    await channelLink(b.page, 'parents').click();
    await message(b.page, 'Only for us').waitFor();

    // Taking the group out again removes the channel from Sam's screen while Sam is in it.
    await page.getByTestId('channel-settings').click();
    await page.getByTestId('settings-dialog').waitFor();
    await page.locator('[data-testid=pick-group][data-name=kids] input').uncheck();
    await page.getByTestId('settings-save').click();
    await page.getByTestId('settings-dialog').waitFor({ state: 'detached' });
    await b.page.getByTestId('chat-error').filter({ hasText: 'no longer have access' }).waitFor();
    await b.page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();
    assert.equal(await channelLink(b.page, 'parents').count(), 0);
    assert.equal(await message(b.page, 'Only for us').count(), 0);
  });

  it('attaches pasted and dropped files, and cancels an upload', async () => {
    const { page } = a;
    await channelLink(page, 'random').click();
    await page.getByTestId('conv-title').filter({ hasText: 'random' }).waitFor();
    // Hold uploads back a moment so that one can be cancelled while it runs.
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    await page.route('**/attachments?name=slow.txt', async (route) => {
      await held;
      await route.continue().catch(() => {}); // cancelled meanwhile
    });
    const composer = page.getByTestId('composer');
    await composer.evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['slow'], 'slow.txt', { type: 'text/plain' }));
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    });
    const slow = page.getByTestId('upload').filter({ hasText: 'slow.txt' });
    await page.locator('[data-testid=upload][data-state=uploading]', { hasText: 'slow.txt' }).waitFor();
    await composer.fill('with files');
    await composer.press('Enter');
    await page.getByTestId('composer-error').filter({ hasText: 'still uploading' }).waitFor();
    await slow.getByTestId('upload-remove').click();
    await slow.waitFor({ state: 'detached' });
    release();
    await page.unroute('**/attachments?name=slow.txt');

    await page.locator('.chat-main').evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
      el.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
      el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.locator('.drop-overlay').waitFor();
    await page.locator('.chat-main').evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
      el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.locator('.drop-overlay').waitFor({ state: 'hidden' });
    await page.getByTestId('upload').filter({ hasText: 'dropped.txt' }).getByTestId('upload-status')
      .filter({ hasText: 'Ready' }).waitFor();
    await composer.press('Enter');
    await message(page, 'with files').getByTestId('attachment-name').filter({ hasText: 'dropped.txt' }).waitFor();
    assert.equal(await message(page, 'with files').getByTestId('attachment-name').count(), 1, 'the cancelled file was not sent');
  });

  it('sends what was typed offline once, when back online', async () => {
    const { page, context } = b;
    await channelLink(a.page, 'general').click();
    await a.page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();
    await channelLink(page, 'general').click();
    await page.getByTestId('conv-title').filter({ hasText: 'general' }).waitFor();
    b.offline = true;
    await context.setOffline(true);
    await page.getByTestId('offline-banner').filter({ hasText: 'Offline' }).waitFor();
    await page.locator('[data-testid=live][data-state=offline]').waitFor();
    const composer = page.getByTestId('composer');
    await composer.fill('Typed while offline');
    await composer.press('Enter');
    const pending = page.getByTestId('pending').filter({ hasText: 'Typed while offline' });
    await pending.getByTestId('pending-status').filter({ hasText: 'sending' }).waitFor();
    await screenshots(page, 'chat-offline');
    await page.waitForTimeout(1500); // still queued, not lost, not sent
    assert.equal(await pending.count(), 1);

    await context.setOffline(false);
    await page.locator('[data-testid=live][data-state=online]').waitFor();
    b.offline = false;
    await pending.waitFor({ state: 'detached' });
    await page.getByTestId('offline-banner').waitFor({ state: 'hidden' });
    await message(page, 'Typed while offline').waitFor();
    await message(a.page, 'Typed while offline').waitFor();
    await a.page.waitForTimeout(1500);
    assert.equal(await message(a.page, 'Typed while offline').count(), 1, 'Alex sees it exactly once');
    assert.equal(await message(page, 'Typed while offline').count(), 1, 'Sam sees it exactly once');
    const history = await callAPI(a.page, 'GET', `/channels/${generalId}/messages?limit=200`);
    assert.equal(history.body.messages.filter((m) => m.text === 'Typed while offline').length, 1, 'stored once');
  });

  it('deletes a message after asking', async () => {
    const { page } = a;
    await openActions(page, 'Hello from Alex');
    await page.getByTestId('action-delete').click();
    const dialog = page.getByTestId('confirm-delete');
    await dialog.waitFor();
    await screenshots(page, 'chat-delete');
    await page.getByTestId('confirm-delete-yes').click();
    await dialog.waitFor({ state: 'detached' });
    await b.page.getByTestId('message-deleted').first().waitFor();
    assert.equal(await message(b.page, 'Hello from Alex').count(), 0);
  });

  it('works from the keyboard: actions menu opens, moves and closes with Escape', async () => {
    const { page } = a;
    const button = message(page, 'The garden this morning').getByTestId('message-actions');
    await button.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('message-menu').waitFor();
    const first = await page.evaluate(() => document.activeElement.dataset.emoji);
    assert.equal(first, '👍');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.emoji), '❤️');
    await page.keyboard.press('Escape');
    await page.getByTestId('message-menu').waitFor({ state: 'detached' });
    assert.equal(await button.evaluate((el) => el === document.activeElement), true);

    // Shift+Enter makes a new line; Enter sends; ArrowUp in an empty composer edits the last message.
    const composer = page.getByTestId('composer');
    await composer.focus();
    await page.keyboard.type('two');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('lines');
    assert.equal(await composer.inputValue(), 'two\nlines');
    await page.keyboard.press('Enter');
    const sent = message(page, 'lines');
    await sent.waitFor();
    assert.equal(await sent.getByTestId('message-text').locator('br').count(), 1);
    await page.keyboard.press('ArrowUp');
    await page.getByTestId('edit-input').waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId('edit-input').waitFor({ state: 'detached' });
  });

  it('scrolls back through long history', async () => {
    // 80 more messages through the API, then a fresh load shows the newest 50 and fetches older on scroll.
    for (let i = 1; i <= 80; i++) {
      const res = await callAPI(a.page, 'POST', `/channels/${generalId}/messages`, { text: `Filler ${i}`, key: `filler-${i}` }, csrfA);
      assert.equal(res.status, 201);
    }
    const { page } = b;
    await go(page, `/app/chat/${generalId}`);
    await message(page, 'Filler 80').waitFor();
    assert.equal(await message(page, 'Filler 10').count(), 0, 'only the newest page at first');
    const start = page.getByTestId('history-start');
    for (let round = 0; round < 5 && !(await start.count()); round++) {
      const before = await page.getByTestId('message').count();
      await page.getByTestId('load-older').scrollIntoViewIfNeeded();
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=message]').length > n, before);
    }
    await start.waitFor();
    await message(page, 'Filler 1').first().waitFor();
    await message(page, 'check the boiler today').first().waitFor();
  });

  it('reloads what it missed when the server asks for a resync', async () => {
    // Sam's socket runs through the test, which loses one event and then sends a resync as a
    // server does for a client too far behind to replay.
    const { page } = b;
    let drop = false;
    let toPage = null;
    await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
      const server = ws.connectToServer();
      toPage = ws;
      server.onMessage((msg) => {
        if (drop && String(msg).includes('"message.new"')) {
          drop = false;
          return;
        }
        ws.send(msg);
      });
    });
    await go(page, `/app/chat/${generalId}`);
    await page.locator('[data-testid=live][data-state=online]').waitFor();
    drop = true;
    const res = await callAPI(a.page, 'POST', `/channels/${generalId}/messages`, { text: 'Lost on the way', key: 'lost-1' }, csrfA);
    assert.equal(res.status, 201);
    for (let i = 0; i < 50 && drop; i++) await page.waitForTimeout(100);
    assert.equal(drop, false, 'the event was held back');
    await page.waitForTimeout(500);
    assert.equal(await message(page, 'Lost on the way').count(), 0);
    toPage.send(JSON.stringify({ type: 'resync', id: 0, data: { last_id: 0 } }));
    await message(page, 'Lost on the way').waitFor();
    await send(a.page, 'And after the resync');
    await message(page, 'And after the resync').waitFor();
  });

  it('fits a 360 px wide phone, with the list and a conversation as separate screens', async () => {
    const { page } = b;
    await page.setViewportSize({ width: 360, height: 740 });
    const fits = async (what) => {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${what} is ${overflow}px wider than a 360 px screen`);
    };
    await go(page, '/app/chat');
    await page.getByTestId('channel-list').waitFor();
    assert.equal(await page.locator('.chat-main').isVisible(), false, 'the list is its own screen');
    await fits('the conversation list');
    await channelLink(page, 'general').click();
    await page.getByTestId('composer').waitFor();
    assert.equal(await page.getByTestId('channel-list').isVisible(), false);
    await fits('a conversation');
    await openActions(page, 'Filler 80');
    await fits('the message menu');
    await page.keyboard.press('Escape');
    await page.getByTestId('back').click();
    await page.getByTestId('channel-list').waitFor();
    for (const path of ['/app/search?q=boiler', '/app/notifications']) {
      await go(page, path);
      await page.locator('h1').waitFor();
      await fits(path);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('logged no errors and no CSP violations', () => {
    assert.deepEqual([...a.problems, ...b.problems], []);
  });
});

