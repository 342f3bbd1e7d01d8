// Browser test: hostile markup in every place a household member can write text that
// others see — display names, channel topics, messages and file names — is shown as text,
// and no script runs (no dialog, no marker set by an injected handler, no CSP violation).
// Env as for shell.test.mjs (run.sh starts a fresh server and sets it).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { OUT, SETUP_TOKEN, callAPI, go, openBrowser, screenshots } from './lib.mjs';

// Each payload would set window.__xss (or open a dialog) if it ever ran.
const PAYLOADS = [
  '<img src=x onerror="window.__xss=1">',
  '"><svg onload="window.__xss=2">',
  "'><script>window.__xss=3</script>",
  '<a href="javascript:window.__xss=4">link</a>',
  '[click](javascript:window.__xss=5)',
  '<iframe srcdoc="<script>parent.__xss=6</script>">',
  '{{constructor.constructor("window.__xss=7")()}}',
];
// File names may not hold slashes; these need none.
const FILES = ['<img src=x onerror="window.__xss=1">.txt', '"><svg onload="window.__xss=9">.png', '"onmouseover="window.__xss=8".txt'];
const ADMIN = { name: 'alex', password: 'hearth-admin-pw' };
const EVIL = { name: 'mallory', password: 'hearth-evil-pw', display: PAYLOADS[0] };
const message = (page, text) => page.locator('[data-testid=message]', { hasText: text });

describe('Hearth against stored XSS', () => {
  let a; // the admin, who reads everything
  let m; // Mallory, who writes it
  let channelId = '';

  before(async () => {
    await mkdir(OUT, { recursive: true });
    a = await openBrowser('alex');
    m = await openBrowser('mallory');
    await go(a.page, '/login');
    const setup = await callAPI(a.page, 'POST', '/setup', { token: SETUP_TOKEN, name: ADMIN.name, password: ADMIN.password });
    assert.ok(setup.status < 300, JSON.stringify(setup.body));
    const csrf = setup.body.csrf;
    const added = await callAPI(a.page, 'POST', '/admin/users',
      { name: EVIL.name, display_name: EVIL.display, password: EVIL.password, role: 'member' }, csrf);
    assert.ok(added.status < 300, JSON.stringify(added.body));

    await go(m.page, '/login');
    const login = await callAPI(m.page, 'POST', '/auth/login', { name: EVIL.name, password: EVIL.password });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const mc = login.body.csrf;
    const ch = await callAPI(m.page, 'POST', '/channels', { name: 'xss', topic: PAYLOADS[1] }, mc);
    assert.ok(ch.status < 300, JSON.stringify(ch.body));
    channelId = ch.body.channel.id;
    // Hostile file names, uploaded and posted; then each payload as a message.
    for (const [i, name] of FILES.entries()) {
      const up = await m.page.evaluate(async ([id, n, c]) => {
        const res = await fetch(`/api/v1/channels/${id}/attachments?name=${encodeURIComponent(n)}`, {
          method: 'POST', headers: { 'X-Hearth-CSRF': c, 'Content-Type': 'text/plain' }, body: 'hello',
        });
        return { status: res.status, body: await res.json() };
      }, [channelId, name, mc]);
      assert.equal(up.status, 201, JSON.stringify(up.body));
      const posted = await callAPI(m.page, 'POST', `/channels/${channelId}/messages`,
        { text: `file ${i}`, attachments: [up.body.attachment.id] }, mc);
      assert.equal(posted.status, 201, JSON.stringify(posted.body));
    }
    for (const p of PAYLOADS) {
      const posted = await callAPI(m.page, 'POST', `/channels/${channelId}/messages`, { text: p }, mc);
      assert.equal(posted.status, 201, JSON.stringify(posted.body));
    }
  });

  after(async () => {
    await a?.close();
    await m?.close();
  });

  it('shows every payload as text and runs none of it', async () => {
    for (const { page } of [a, m]) {
      await go(page, `/app/chat/${channelId}`);
      await page.getByTestId('conv-topic').filter({ hasText: PAYLOADS[1] }).waitFor();
      assert.equal(await page.getByTestId('conv-topic').textContent(), PAYLOADS[1]);
      for (const p of PAYLOADS) {
        const text = page.getByTestId('message-text').filter({ hasText: p }).first();
        await text.waitFor();
        assert.equal((await text.textContent()).trim(), p, `message shows ${p}`);
      }
      for (const name of FILES) {
        const file = page.getByTestId('attachment-name').filter({ hasText: name });
        await file.waitFor();
        assert.equal(await file.textContent(), name);
        await file.hover();
      }
      // Mallory's display name is the author of every message.
      const author = message(page, PAYLOADS[3]).last().getByTestId('message-author');
      assert.equal(await author.textContent(), EVIL.display);
      for (const link of await page.locator('.messages a[href]').all()) {
        assert.doesNotMatch(await link.getAttribute('href'), /^\s*javascript:/i, 'a javascript: link was made');
      }
      assert.equal(await page.locator('img[src="x"], .messages svg[onload], .messages iframe, .messages script').count(), 0);
      await page.waitForTimeout(300); // let any injected handler fire
      assert.equal(await page.evaluate(() => window.__xss), undefined, 'an injected script ran');
    }
    await screenshots(a.page, 'xss-channel');
    assert.deepEqual([...a.problems, ...m.problems], []);
  });
});
