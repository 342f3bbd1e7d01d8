// Browser test of file transfer against a real Hearth server: Alex sends a 200 MB file from the
// Send page to Sam's browser (progress, verified SHA-256 of the downloaded file on disk, the
// same check code on both screens); a guest in a third browser pairs by code and receives
// through the relay only (getStats); a file left for someone offline lands as a DM
// attachment; history lists and clears; the CLI sends to and receives from a browser.
// Env as for shell.test.mjs (run.sh starts a fresh server and sets it), plus HEARTH_BIN.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE, DESKTOP, OUT, PHONE, SETUP_TOKEN, callAPI, go, openBrowser } from './lib.mjs';

const ALEX = { name: 'alex', display: 'Alex Admin', password: 'hearth-admin-pw' };
const SAM = { name: 'sam', display: 'Sam', password: 'hearth-member-pw' };
const KIM = { name: 'kim', display: 'Kim', password: 'hearth-kim-pw-1' };
const MB = 1024 * 1024;

// Loopback host candidates, so browser-to-browser transfers can go direct.
const BROWSER = { acceptDownloads: true, args: ['--allow-loopback-in-peer-connection'] };

let tmp;

/** Runs the hearth binary (HEARTH_BIN) with args, stdin closed; resolves with its output, rejects on failure. */
function run(args, timeout) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.HEARTH_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: tmp } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; if (process.env.TRANSFER_DEBUG) process.stderr.write(`[cli] ${d}`); });
    child.stderr.on('data', (d) => { stderr += d; if (process.env.TRANSFER_DEBUG) process.stderr.write(`[cli] ${d}`); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`hearth ${args.join(' ')} exited ${code ?? signal}\n${stdout}\n${stderr}`));
    });
  });
}

/** transfer-NAME-{phone,phone-dark,desktop}.png, checking nothing overflows sideways. */
async function screenshots(page, name, only = ['phone', 'phone-dark', 'desktop'], target = null) {
  for (const [suffix, viewport, colorScheme] of [['phone', PHONE, 'light'], ['phone-dark', PHONE, 'dark'], ['desktop', DESKTOP, 'light']]) {
    if (!only.includes(suffix)) continue;
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme });
    await page.waitForTimeout(200);
    if (target) await target.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} at ${suffix} is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(OUT, `transfer-${name}-${suffix}.png`) });
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

/** Writes size random bytes to path; resolves with their SHA-256 (hex). */
async function randomFile(path, size) {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0;) {
    const n = Math.min(left, 4 * MB);
    const b = randomBytes(n);
    hash.update(b);
    if (!out.write(b)) await new Promise((resolve) => out.once('drain', resolve));
    left -= n;
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

/** The local candidate type of the transfer's selected ICE pair, from getStats in the page. */
function candidateType(page, id) {
  return page.evaluate(async (tid) => {
    const t = window.__hearthTransfer?.get(tid);
    if (!t?.pc) return '';
    const stats = await t.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    return pair ? stats.get(pair.localCandidateId)?.candidateType || '' : '';
  }, id);
}

/** Collects the manager's progress events in the page (bytes seen per transfer). */
function watchProgress(page) {
  return page.evaluate(() => {
    window.__progress = [];
    window.__hearthTransfer.on((kind, t) => {
      if (kind === 'progress') window.__progress.push(t.bytes);
    });
  });
}

const card = (page) => page.getByTestId('tx-card').first();

// sendToSam offers the chosen files to sam's device once both pages are connected, and fails
// with the sender's own error message if the offer is refused.
async function sendToSam(a, b, samID) {
  for (const page of [a.page, b.page]) await page.locator('[data-testid=live][data-state=online]').waitFor({ timeout: 30000 });
  await a.page.locator(`[data-testid=send-person][data-user="${samID}"] [data-testid=send-to-device]`).first().click();
  const shown = await Promise.race([
    b.page.getByTestId('tx-incoming').waitFor({ timeout: 30000 }).then(() => 'incoming'),
    a.page.getByTestId('send-error').waitFor({ timeout: 30000 }).then(() => 'error'),
  ]);
  if (shown === 'error') assert.fail(`the offer was refused: ${await a.page.getByTestId('send-error').textContent()}`);
}

// The protocol pieces that need no browser: the worker's SHA-256 and the safe file names
// (the same table as appliance/transfer/peer's TestSafeName, so both ends agree).
describe('transfer protocol pieces', () => {
  it('hashes like SHA-256, fed in any pieces, with its state saved and loaded', async () => {
    const src = await readFile(new URL('../static/transfer/hash-worker.js', import.meta.url), 'utf8');
    const Sha256 = new Function('self', `${src}\nreturn Sha256;`)({});
    const hex = (data) => createHash('sha256').update(data).digest('hex');
    for (const text of ['', 'abc', 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq']) {
      assert.equal(new Sha256().update(Buffer.from(text)).hex(), hex(text), text);
    }
    assert.equal(new Sha256().update(new Uint8Array(1e6).fill(0x61)).hex(),
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
    for (let trial = 0; trial < 100; trial++) {
      const data = randomBytes(trial * 37 + (trial % 7) * 64);
      let h = new Sha256();
      for (let i = 0; i < data.length;) {
        const n = (trial * 13 + i) % 200;
        h.update(data.subarray(i, i + n));
        i += n || 1;
        if (n === 0) h.update(data.subarray(i - 1, i));
        if (i % 3 === 0) h = Sha256.load(structuredClone(h.save()));
      }
      assert.equal(h.hex(), hex(data), `trial ${trial}`);
    }
  });

  it('makes names safe as PROTOCOL.md 3.5 says', async () => {
    const { numbered, safeName } = await import('../static/transfer/protocol.js');
    const long = '\u00e9'.repeat(200);
    for (const [input, want] of [
      ['../x', 'x'], ['a/../../b', 'a/b'], ['/etc/passwd', 'etc/passwd'], ['CON.txt', '_CON.txt'], ['con', '_con'],
      ['lpt9.tar.gz', '_lpt9.tar.gz'], ['COM0', 'COM0'], ['CONSOLE', 'CONSOLE'], ['dir/NUL', 'dir/_NUL'],
      ['a\x00b\x1fc\x7f', 'a_b_c_'], ['back\\slash', 'back_slash'], ['w<i>n:d"o|w?s*', 'w_i_n_d_o_w_s_'],
      ['./././', 'file'], ['', 'file'], ['..', 'file'], ['a//b/./c', 'a/b/c'], [long, '\u00e9'.repeat(127)],
      ['r\u00e9sum\u00e9.pdf', 'r\u00e9sum\u00e9.pdf'],
    ]) assert.equal(safeName(input), want, JSON.stringify(input));
    for (const [input, n, want] of [['a.txt', 2, 'a (2).txt'], ['archive.tar.gz', 3, 'archive.tar (3).gz'],
      ['.bashrc', 2, '.bashrc (2)'], ['noext', 2, 'noext (2)']]) assert.equal(numbered(input, n), want);
  });
});

describe('Hearth file transfer', () => {
  let a; // Alex, the sender
  let b; // Sam, the receiver
  let c; // a guest, then Kim
  const ids = {};
  let csrf = '';

  before(async () => {
    await mkdir(OUT, { recursive: true });
    tmp = await mkdtemp(join(tmpdir(), 'hearth-transfer-files-'));
    a = await openBrowser('alex', BROWSER);
    b = await openBrowser('sam', BROWSER);
    c = await openBrowser('guest', BROWSER);
    await go(a.page, '/login');
    const setup = await callAPI(a.page, 'POST', '/setup',
      { token: SETUP_TOKEN, name: ALEX.name, display_name: ALEX.display, password: ALEX.password });
    assert.ok(setup.status < 300, JSON.stringify(setup.body));
    csrf = setup.body.csrf;
    ids.alex = setup.body.user.id;
    for (const u of [SAM, KIM]) {
      const added = await callAPI(a.page, 'POST', '/admin/users',
        { name: u.name, display_name: u.display, password: u.password, role: 'member' }, csrf);
      assert.ok(added.status < 300, JSON.stringify(added.body));
      ids[u.name] = added.body.user?.id;
    }
    await go(b.page, '/login');
    const login = await callAPI(b.page, 'POST', '/auth/login', { name: SAM.name, password: SAM.password });
    assert.ok(login.status < 300, JSON.stringify(login.body));
    ids.sam = login.body.user.id;
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await c?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const only = process.env.TRANSFER_ONLY; // "cli": the CLI tests alone (while debugging)
  const web = only === 'cli' ? it.skip : it;

  web('shows the household\u2019s online devices on the Send page', async () => {
    for (const { page } of [a, b]) {
      await go(page, '/app/send');
      await page.locator('[data-testid=live][data-state=online]').waitFor();
    }
    assert.equal(await a.page.title(), 'Send files \u00b7 Hearth');
    await a.page.locator(`[data-testid=send-person][data-user="${ids.sam}"]`).waitFor({ timeout: 20000 });
    assert.match(await a.page.getByTestId('send-offline').textContent(), /Kim/);
    await screenshots(a.page, 'send');
  });

  web('sends 200 MB browser to browser with progress and a verified hash on disk', async () => {
    const src = join(tmp, 'big-200.bin');
    const want = await randomFile(src, 200 * MB);
    await a.page.getByTestId('send-file-input').setInputFiles(src);
    await a.page.getByTestId('send-chosen').getByText('big-200.bin').waitFor();
    await watchProgress(a.page);
    await watchProgress(b.page);
    await sendToSam(a, b, ids.sam);

    const dialog = b.page.getByTestId('tx-incoming');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /^alex \(.*\) wants to send you files/);
    assert.match(await b.page.getByTestId('tx-offer-summary').textContent(), /1 file, 210 MB/);
    await screenshots(b.page, 'incoming');
    const download = b.page.waitForEvent('download', { timeout: 60000 });
    await b.page.getByTestId('tx-accept-downloads').click();

    // Progress on both sides while it runs.
    await a.page.waitForFunction(() => window.__progress.some((n) => n > 40 * 1024 * 1024), null, { timeout: 120000 });
    await screenshots(a.page, 'progress', ['phone', 'desktop']);
    const dl = await download;
    const path = await dl.path(); // waits for the download to finish
    await card(b.page).and(b.page.locator('[data-state=done]')).waitFor({ timeout: 180000 });
    await card(a.page).and(a.page.locator('[data-state=done]')).waitFor({ timeout: 30000 });
    assert.equal(dl.suggestedFilename(), 'big-200.bin');
    assert.equal((await stat(path)).size, 200 * MB);
    assert.equal(await sha256File(path), want, 'the downloaded file has the sent bytes');
    const seenA = await a.page.evaluate(() => window.__progress);
    const seenB = await b.page.evaluate(() => window.__progress);
    assert.ok(seenA.length >= 50 && seenA.at(-1) === 200 * MB, `sender progress: ${seenA.length} events`);
    assert.ok(seenB.length >= 50 && seenB.at(-1) === 200 * MB, `receiver progress: ${seenB.length} events`);
    assert.ok(seenB.every((n, i) => i === 0 || n >= seenB[i - 1]), 'progress only grows');
    assert.equal(await card(a.page).getByTestId('tx-file').getAttribute('data-result'), 'ok');
    assert.equal(await card(b.page).getByTestId('tx-file').getAttribute('data-result'), 'ok');
    const codeA = await card(a.page).getByTestId('tx-verify-code').textContent();
    const codeB = await card(b.page).getByTestId('tx-verify-code').textContent();
    assert.match(codeA, /^\d{3} \d{3}$/);
    assert.equal(codeA, codeB, 'both screens show the same check code');
    await screenshots(b.page, 'done', ['phone', 'desktop']);
    await rm(src);
  });

  web('resumes into a folder after the connection drops, from the last confirmed MiB', async () => {
    const src = join(tmp, 'resume.bin');
    const want = await randomFile(src, 40 * MB);
    // Headless Chromium cannot click the folder picker: the page's private folder stands in for it.
    await b.page.evaluate(() => { window.__hearthTransferFolder = () => navigator.storage.getDirectory(); });
    await a.page.getByTestId('send-file-input').setInputFiles(src);
    await a.page.getByTestId('send-chosen').getByText('resume.bin').waitFor();
    await sendToSam(a, b, ids.sam);
    await b.page.getByTestId('tx-incoming').waitFor();
    const id = await b.page.getByTestId('tx-incoming').getAttribute('data-id');
    await b.page.getByTestId('tx-accept').click();
    await b.page.waitForFunction((tid) => window.__hearthTransfer.get(tid)?.bytes > 12 * 1024 * 1024, id, { timeout: 60000 });
    await b.page.evaluate((tid) => window.__hearthTransfer.drop(tid), id);
    await b.page.locator(`[data-testid=tx-card][data-id="${id}"][data-state=interrupted]`).waitFor();
    await b.page.locator(`[data-testid=tx-card][data-id="${id}"][data-state=done]`).waitFor({ timeout: 120000 });
    const got = await b.page.evaluate(async (tid) => {
      const t = window.__hearthTransfer.get(tid);
      const dir = await navigator.storage.getDirectory();
      const names = [];
      for await (const name of dir.keys()) names.push(name);
      const file = await (await dir.getFileHandle('resume.bin')).getFile();
      const sum = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
      return { names, resumedFrom: t.recvState.resumedFrom || 0, hex: Array.from(new Uint8Array(sum), (x) => x.toString(16).padStart(2, '0')).join('') };
    }, id);
    assert.deepEqual(got.names, ['resume.bin'], 'renamed once verified, no partial file left');
    assert.ok(got.resumedFrom >= 1024 * 1024 && got.resumedFrom % (64 * 1024) === 0, `resumed from ${got.resumedFrom}`);
    assert.equal(got.hex, want);
    await a.page.locator(`[data-testid=tx-card][data-id="${id}"][data-state=done]`).waitFor({ timeout: 30000 });
    await rm(src);
  });

  web('pairs a guest by code and sends through the relay only', async () => {
    const src = join(tmp, 'for-guest.bin');
    const want = await randomFile(src, 48 * MB);
    await a.page.getByTestId('send-file-input').setInputFiles(src);
    await a.page.getByTestId('send-guest-start').click();
    const code = (await a.page.getByTestId('send-guest-code').textContent()).trim();
    assert.match(code, /^[0-9A-Z]{5}-[0-9A-Z]{5}$/);
    const link = (await a.page.getByTestId('send-guest-link').textContent()).trim();
    assert.equal(link, `${BASE}/t/${code.replace('-', '')}`);
    await a.page.getByTestId('send-guest-qr').and(a.page.locator('img')).evaluate((img) => img.decode());
    await screenshots(a.page, 'guest-code', ['phone', 'desktop'], a.page.getByTestId('send-guest'));

    await c.page.goto(link);
    await c.page.getByTestId('guest-pair').click();
    await c.page.getByTestId('guest-offer').waitFor();
    assert.match(await c.page.getByTestId('guest-offer').textContent(), /alex wants to send you files/);
    await screenshots(c.page, 'guest');
    const download = c.page.waitForEvent('download', { timeout: 60000 });
    await c.page.getByTestId('tx-accept-downloads').click();
    const id = await c.page.getByTestId('tx-card').getAttribute('data-id');
    // While bytes flow: both sides use relay candidates only.
    await c.page.locator('[data-testid=tx-card][data-state=receiving]').waitFor({ timeout: 30000 });
    const types = [await candidateType(c.page, id), await candidateType(a.page, id)];
    assert.deepEqual(types, ['relay', 'relay'], 'guest and sender both on a relay candidate');
    await screenshots(c.page, 'guest-progress', ['phone']);
    const path = await (await download).path();
    await c.page.locator('[data-testid=tx-card][data-state=done]').waitFor({ timeout: 120000 });
    assert.equal(await sha256File(path), want);
    const codeC = await c.page.getByTestId('tx-verify-code').textContent();
    const codeA = await a.page.locator(`[data-testid=tx-card][data-id="${id}"] [data-testid=tx-verify-code]`).textContent();
    assert.equal(codeC, codeA);
    await screenshots(c.page, 'guest-done', ['phone', 'desktop']);

    // The code worked once.
    const again = await callAPI(c.page, 'POST', '/transfer/pair', { code: code.replace('-', '') });
    assert.ok(again.status >= 400, 'a used code is refused');
    await rm(src);
  });

  web('leaves files for someone offline as a direct-message attachment', async () => {
    const src = join(tmp, 'for-kim.txt');
    await writeFile(src, 'Hello Kim, the holiday photos follow.\n');
    await a.page.getByTestId('send-file-input').setInputFiles(src);
    await a.page.getByTestId('send-offline').locator('summary').click();
    await a.page.locator(`[data-testid=send-leave][data-user="${ids.kim}"]`).click();
    await a.page.locator('[data-testid=tx-leave][data-state=done]').waitFor({ timeout: 30000 });

    // Kim signs in later and finds it.
    await c.page.goto('about:blank');
    await c.context.clearCookies();
    await go(c.page, '/login');
    const login = await callAPI(c.page, 'POST', '/auth/login', { name: KIM.name, password: KIM.password });
    assert.ok(login.status < 300, JSON.stringify(login.body));
    const { body } = await callAPI(c.page, 'GET', '/channels');
    const dm = body.channels.find((ch) => ch.kind === 'dm' && ch.members.includes(ids.alex));
    assert.ok(dm, 'a direct conversation with Alex');
    const msgs = await callAPI(c.page, 'GET', `/channels/${dm.id}/messages`);
    const withFile = msgs.body.messages.find((m) => m.attachments?.some((x) => x.name === 'for-kim.txt'));
    assert.ok(withFile, 'the message carries the file');
    const att = withFile.attachments.find((x) => x.name === 'for-kim.txt');
    const text = await c.page.evaluate(async (url) => (await fetch(url)).text(), `/api/v1/attachments/${att.id}`);
    assert.equal(text, 'Hello Kim, the holiday photos follow.\n');
  });

  web('takes files shared from another app (PWA share target)', async () => {
    // What the phone's share sheet does: a multipart POST to the manifest's share_target action.
    const manifest = await (await fetch(`${BASE}/manifest.webmanifest`)).json();
    assert.equal(manifest.share_target.action, '/transfer/share');
    await a.page.evaluate(() => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = '/transfer/share';
      form.enctype = 'multipart/form-data';
      const input = document.createElement('input');
      input.type = 'file';
      input.name = 'files';
      input.id = 'share-files';
      const text = document.createElement('input');
      text.name = 'text';
      text.value = 'Look at this';
      form.append(input, text);
      document.body.append(form);
    });
    await a.page.locator('#share-files').setInputFiles({ name: 'shared-photo.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('not really a photo') });
    await Promise.all([a.page.waitForURL(`${BASE}/app/send`), a.page.evaluate(() => document.querySelector('#share-files').form.submit())]);
    await a.page.getByTestId('send-chosen').getByText('shared-photo.jpg').waitFor();
    await a.page.getByTestId('send-chosen').getByText('Shared note.txt').waitFor();
    assert.match(await a.page.getByTestId('send-chosen-sum').textContent(), /^2 files/);
    await a.page.getByTestId('send-chosen').getByRole('button', { name: 'Remove shared-photo.jpg' }).click();
    await a.page.getByTestId('send-chosen').getByRole('button', { name: 'Remove Shared note.txt' }).click();
  });

  web('lists the transfers in history and clears it', async () => {
    await go(a.page, '/app/send');
    await a.page.getByTestId('send-history-item').first().waitFor();
    assert.ok(await a.page.getByTestId('send-history-item').count() >= 2);
    await screenshots(a.page, 'history', ['phone', 'desktop'], a.page.getByTestId('send-history'));
    await a.page.getByTestId('send-history-clear').click();
    await a.page.getByTestId('send-history').getByText('Nothing sent or received yet.').waitFor();
  });

  it('sends from the browser to `hearth receive` with a guest code', async () => {
    const src = join(tmp, 'to-cli.bin');
    const want = await randomFile(src, 20 * MB);
    await go(a.page, '/app/send');
    await a.page.locator('[data-testid=live][data-state=online]').waitFor();
    await a.page.getByTestId('send-file-input').setInputFiles(src);
    await a.page.getByTestId('send-guest-start').click();
    const code = (await a.page.getByTestId('send-guest-code').textContent()).trim();
    const dir = await mkdtemp(join(tmp, 'cli-in-'));
    if (process.env.TRANSFER_DEBUG) console.error('code', code);
    const { stdout, stderr } = await run(['receive', code, '--yes', '--dir', dir, '--url', BASE], 120000);
    assert.deepEqual(await readdir(dir), ['to-cli.bin'], `hearth receive wrote: ${stdout}${stderr}`);
    assert.equal(await sha256File(join(dir, 'to-cli.bin')), want);
    await a.page.locator('[data-testid=tx-card][data-state=done]').first().waitFor({ timeout: 30000 });
    const codeA = (await card(a.page).getByTestId('tx-verify-code').textContent()).trim();
    assert.ok(`${stdout}${stderr}`.includes(codeA), `the CLI shows the check code ${codeA}: ${stdout}${stderr}`);
  });

  it('sends from `hearth send --to` to the browser', async () => {
    const src = join(tmp, 'from-cli.bin');
    const want = await randomFile(src, 20 * MB);
    const made = await callAPI(a.page, 'POST', '/tokens', { name: 'transfer test' }, csrf);
    assert.ok(made.status < 300, JSON.stringify(made.body));
    await go(b.page, '/app/send');
    await b.page.locator('[data-testid=live][data-state=online]').waitFor();
    const sending = run(['send', '--to', SAM.name, '--url', BASE, '--token', made.body.token, src], 120000);
    const dialog = b.page.getByTestId('tx-incoming');
    await dialog.waitFor({ timeout: 30000 });
    assert.match(await b.page.getByTestId('tx-offer-summary').textContent(), /1 file, 21 MB/);
    const download = b.page.waitForEvent('download', { timeout: 60000 });
    await b.page.getByTestId('tx-accept-downloads').click();
    const path = await (await download).path();
    const { stdout, stderr } = await sending;
    await card(b.page).and(b.page.locator('[data-state=done]')).waitFor({ timeout: 30000 });
    assert.equal(await sha256File(path), want);
    const codeB = (await card(b.page).getByTestId('tx-verify-code').textContent()).trim();
    assert.ok(`${stdout}${stderr}`.includes(codeB), `the CLI shows the check code ${codeB}: ${stdout}${stderr}`);
  });

  it('had no console errors, CSP violations or failed requests', () => {
    assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
  });
});

