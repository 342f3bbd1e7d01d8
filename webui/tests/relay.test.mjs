// The built-in TURN relay carries a WebRTC data channel between two browsers that may
// use nothing but relay candidates (the privacy mode guests get): credentials come from
// the API, data flows, and getStats shows the selected pair is relay on both sides.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, OUT, SETUP_TOKEN, callAPI } from './lib.mjs';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

async function browser(label) {
  const profile = await mkdtemp(join(tmpdir(), `hearth-relay-${label}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on('pageerror', (err) => problems.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`${label}: ${msg.text()}`);
  });
  await page.goto(BASE + '/login');
  return { context, page, problems, close: async () => { await context.close(); await rm(profile, { recursive: true, force: true }); } };
}

// startPeer runs in the page: a relay-only peer connection with the API's credentials.
function startPeer([role, remote]) {
  return (async () => {
    const res = await fetch('/api/v1/turn/credentials');
    if (!res.ok) throw new Error(`credentials: ${res.status}`);
    const cred = await res.json();
    const pc = new RTCPeerConnection({
      iceServers: [{ urls: cred.urls.filter((u) => u.startsWith('turn:')), username: cred.username, credential: cred.credential }],
      iceTransportPolicy: 'relay',
    });
    window.peer = { pc, got: [] };
    const gathered = new Promise((resolve) => {
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    });
    const wire = (dc) => {
      window.peer.dc = dc;
      dc.onmessage = (e) => window.peer.got.push(e.data);
    };
    if (role === 'offer') {
      wire(pc.createDataChannel('transfer'));
      await pc.setLocalDescription(await pc.createOffer());
    } else {
      pc.ondatachannel = (e) => wire(e.channel);
      await pc.setRemoteDescription(remote);
      await pc.setLocalDescription(await pc.createAnswer());
    }
    await gathered;
    return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
  })();
}

async function selectedPair(page) {
  return page.evaluate(async () => {
    const stats = await window.peer.pc.getStats();
    let pairId;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = stats.get(pairId);
    return pair && {
      local: stats.get(pair.localCandidateId).candidateType,
      remote: stats.get(pair.remoteCandidateId).candidateType,
      bytes: pair.bytesSent + pair.bytesReceived,
    };
  });
}

test('two browsers exchange data through the relay only', async () => {
  const a = await browser('a');
  const b = await browser('b');
  try {
    let r = await callAPI(a.page, 'POST', '/setup', { token: SETUP_TOKEN, name: 'mum', password: 'correct horse' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    r = await callAPI(b.page, 'POST', '/auth/login', { name: 'mum', password: 'correct horse' });
    assert.equal(r.status, 200, JSON.stringify(r.body));

    const offer = await a.page.evaluate(startPeer, ['offer', null]);
    assert.ok(/ typ relay /.test(offer.sdp), 'the offer has relay candidates from Hearth');
    assert.ok(!/ typ host /.test(offer.sdp), 'relay-only: no host candidate reveals an address');
    const answer = await b.page.evaluate(startPeer, ['answer', offer]);
    await a.page.evaluate((ans) => window.peer.pc.setRemoteDescription(ans), answer);

    for (const p of [a.page, b.page]) {
      await p.waitForFunction(() => window.peer.dc && window.peer.dc.readyState === 'open', null, { timeout: 15000 });
    }
    await a.page.evaluate(() => window.peer.dc.send('hello through the hearth'));
    await b.page.evaluate(() => window.peer.dc.send('and back'));
    await b.page.waitForFunction(() => window.peer.got.includes('hello through the hearth'), null, { timeout: 10000 });
    await a.page.waitForFunction(() => window.peer.got.includes('and back'), null, { timeout: 10000 });

    for (const [label, p] of [['a', a.page], ['b', b.page]]) {
      const pair = await selectedPair(p);
      assert.ok(pair, `${label} has a selected candidate pair`);
      assert.equal(pair.local, 'relay', `${label} sends through the relay`);
      assert.equal(pair.remote, 'relay', `${label}'s peer is reached through the relay`);
      assert.ok(pair.bytes > 0, `${label} moved bytes over the pair`);
    }
    // The relay's own view agrees: live allocations for this user.
    const stats = await callAPI(a.page, 'GET', '/admin/relay');
    assert.equal(stats.status, 200);
    assert.ok(stats.body.Allocations.length >= 2, `relay stats list the allocations: ${JSON.stringify(stats.body.Allocations)}`);
    // The admin page's relay view shows them live.
    const admin = await a.context.newPage();
    admin.on('console', (m) => m.type() === 'error' && a.problems.push(`admin page: ${m.text()}`));
    admin.on('pageerror', (e) => a.problems.push(`admin page: ${e.message}`));
    await admin.setViewportSize({ width: 1280, height: 800 });
    await admin.goto(BASE + '/app/admin');
    const summary = admin.getByTestId('relay-summary');
    await admin.waitForFunction(() => /[1-9]\d* live allocation/.test(document.querySelector('[data-testid=relay-summary]')?.textContent || ''), null, { timeout: 10000 })
      .catch(async (err) => { await admin.screenshot({ path: join(OUT, 'relay-admin-failed.png') }); throw new Error(`relay view: ${await admin.evaluate(() => document.body.innerText)} ${a.problems.join('; ')}`, { cause: err }); });
    await summary.scrollIntoViewIfNeeded();
    await admin.screenshot({ path: join(OUT, 'relay-admin-desktop.png') });
    assert.deepEqual([...a.problems, ...b.problems], []);
  } finally {
    await a.close();
    await b.close();
  }
});
