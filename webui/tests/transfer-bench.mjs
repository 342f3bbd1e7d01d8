// Benchmark of browser-to-browser transfer in Chromium on loopback (run by .ci/bench-transfer-browser
// through run.sh, which starts a fresh Hearth in a private network namespace). In one run, in the
// same two browsers:
//   1. a bare data channel: 64 KiB messages from memory, flow-controlled like the protocol
//      (bufferedAmount at most 4 MiB, bufferedAmountLowThreshold 1 MiB), no protocol, no hashing,
//      nothing written; time from its first to its last byte at the receiver;
//   2. Hearth's transfer of a file of the same size from disk, chosen on the Send page, accepted
//      into the streamed download (service worker), hashed on both sides; time from the
//      receiver's first byte to its verified end; and the time from accept to the first byte;
//   3. a 1 GB Hearth transfer, sampling both pages' JS heap (performance.memory, precise) every
//      100 ms: peak minus the heap before it began, after a forced GC.
// Rounds alternate bare and Hearth (BENCH_ROUNDS, default 2); medians are printed. Knobs:
// BENCH_MB (500), BENCH_BIG_MB (1000). Figures, not assertions.

import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, SETUP_TOKEN, callAPI, go } from './lib.mjs';

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.BENCH_MB) || 500;
const BIG_MB = Number(process.env.BENCH_BIG_MB) || 1000;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 2;
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--enable-precise-memory-info', '--js-flags=--expose-gc',
];

async function open(label) {
  const profile = await mkdtemp(join(tmpdir(), `hearth-bench-${label}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS, acceptDownloads: true,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => console.error(`${label}: ${err.message}`));
  return { context, page, close: async () => { await context.close(); await rm(profile, { recursive: true, force: true }); } };
}

async function randomFile(path, size) {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  for (let left = size; left > 0;) {
    const b = randomBytes(Math.min(left, 4 * MB));
    hash.update(b);
    if (!out.write(b)) await new Promise((resolve) => out.once('drain', resolve));
    left -= b.length;
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

// ---- Bare data channel ----

async function bare(a, b, bytes) {
  // The same ICE servers as Hearth's transfer (Chromium hides host addresses behind mDNS names).
  const ice = async () => {
    const c = await (await fetch('/api/v1/turn/credentials')).json();
    return { iceServers: [{ urls: c.urls, username: c.username, credential: c.credential }] };
  };
  await a.page.evaluate(`window.benchIce = ${ice.toString()}`);
  await b.page.evaluate(`window.benchIce = ${ice.toString()}`);
  const offer = await a.page.evaluate(async () => {
    const pc = new RTCPeerConnection(await window.benchIce());
    const dc = pc.createDataChannel('bare');
    window.bare = { pc, dc };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
    return pc.localDescription.toJSON();
  });
  step('bare: offer made');
  const answer = await b.page.evaluate(async ([o, total]) => {
    const pc = new RTCPeerConnection(await window.benchIce());
    window.bare = { pc };
    window.bareDone = new Promise((resolve) => {
      pc.ondatachannel = (e) => {
        const dc = e.channel;
        dc.binaryType = 'arraybuffer';
        let got = 0;
        let t0 = 0;
        dc.onmessage = (m) => {
          if (!t0) t0 = performance.now();
          got += m.data.byteLength;
          if (got >= total) resolve({ ms: performance.now() - t0, got });
        };
      };
    });
    await pc.setRemoteDescription(o);
    await pc.setLocalDescription(await pc.createAnswer());
    await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
    return pc.localDescription.toJSON();
  }, [offer, bytes]);
  step('bare: answer made');
  await a.page.evaluate(async ([ans, total]) => {
    const { pc, dc } = window.bare;
    await pc.setRemoteDescription(ans);
    await new Promise((r) => (dc.readyState === 'open' ? r() : dc.addEventListener('open', r, { once: true })));
    dc.bufferedAmountLowThreshold = 1024 * 1024;
    const chunk = new Uint8Array(65536);
    crypto.getRandomValues(chunk);
    let sent = 0;
    await new Promise((resolve) => {
      const pump = () => {
        while (sent < total && dc.bufferedAmount < 4 * 1024 * 1024) {
          dc.send(chunk);
          sent += chunk.length;
        }
        if (sent >= total) resolve();
      };
      dc.onbufferedamountlow = pump;
      pump();
    });
  }, [answer, bytes]);
  step('bare: all sent');
  const res = await b.page.evaluate(() => window.bareDone);
  pairTypes.bare = await pairType(b.page, 'window.bare.pc');
  await a.page.evaluate(() => window.bare.pc.close());
  await b.page.evaluate(() => window.bare.pc.close());
  return bytes / (res.ms / 1000);
}

/** "host/udp -> host/udp": the selected candidate pair of the peer connection at expr. */
function pairType(page, expr) {
  return page.evaluate(async (e) => {
    // eslint-disable-next-line no-eval
    const pc = (0, eval)(e);
    if (!pc) return '?';
    const stats = await pc.getStats();
    let out = '?';
    stats.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      const p = stats.get(s.selectedCandidatePairId);
      const l = stats.get(p.localCandidateId);
      const r = stats.get(p.remoteCandidateId);
      out = `${l.candidateType}/${l.protocol} -> ${r.candidateType}/${r.protocol}`;
    });
    return out;
  }, expr);
}
const pairTypes = {};
const step = (text) => { if (process.env.BENCH_DEBUG) process.stderr.write(text + '\n'); };

// ---- Hearth ----

async function heap(page) {
  return page.evaluate(() => performance.memory.usedJSHeapSize);
}

async function hearth(a, b, path, bytes, samId, { sampleHeap = false } = {}) {
  for (const p of [a.page, b.page]) {
    await p.evaluate(() => {
      window.gc?.();
      window.__bench = { base: performance.memory.usedJSHeapSize, peak: performance.memory.usedJSHeapSize };
    });
  }
  if (sampleHeap) {
    for (const p of [a.page, b.page]) {
      await p.evaluate(() => {
        window.__bench.timer = setInterval(() => {
          window.__bench.peak = Math.max(window.__bench.peak, performance.memory.usedJSHeapSize);
        }, 100);
      });
    }
  }
  await b.page.evaluate(() => {
    window.__benchDone = new Promise((resolve) => {
      window.__hearthTransfer.on((kind, t) => {
        if (kind === 'update' && ['done', 'failed', 'cancelled'].includes(t.state)) {
          resolve({ state: t.state, error: t.error || '', doneAt: performance.now(), acceptedAt: t.acceptedAt, firstByteAt: t.firstByteAt, id: t.id });
        }
      });
    });
  });
  await a.page.getByTestId('send-file-input').setInputFiles(path);
  await a.page.locator(`[data-testid=send-person][data-user="${samId}"] [data-testid=send-to-device]`).first().click();
  const download = b.page.waitForEvent('download', { timeout: 60000 });
  await b.page.getByTestId('tx-accept-downloads').click();
  await b.page.locator('[data-testid=tx-card][data-state=receiving]').first().waitFor({ timeout: 60000 }).catch(() => {});
  const id = await b.page.getByTestId('tx-card').first().getAttribute('data-id');
  pairTypes.hearth = await pairType(b.page, `window.__hearthTransfer.get(${JSON.stringify(id)}).pc`);
  const r = await b.page.evaluate(() => window.__benchDone);
  const dl = await download;
  await dl.path();
  await dl.delete();
  if (r.state !== 'done') throw new Error(`transfer ${r.state}: ${r.error}`);
  const mem = [];
  for (const p of [a.page, b.page]) {
    mem.push(await p.evaluate(() => {
      clearInterval(window.__bench.timer);
      return window.__bench.peak - window.__bench.base;
    }));
  }
  // Dismiss the cards so the next round starts clean.
  for (const p of [a.page, b.page]) await p.evaluate((id) => window.__hearthTransfer.dismiss(id), r.id);
  return { rate: bytes / ((r.doneAt - r.firstByteAt) / 1000), ttfb: r.firstByteAt - r.acceptedAt, senderHeap: mem[0], receiverHeap: mem[1] };
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mbps = (x) => (x / 1e6).toFixed(1);

async function main() {
  const tmp = await mkdtemp(join(tmpdir(), 'hearth-bench-files-'));
  const a = await open('alex');
  const b = await open('sam');
  try {
    await go(a.page, '/login');
    const setup = await callAPI(a.page, 'POST', '/setup', { token: SETUP_TOKEN, name: 'alex', display_name: 'Alex', password: 'hearth-admin-pw' });
    await callAPI(a.page, 'POST', '/admin/users', { name: 'sam', display_name: 'Sam', password: 'hearth-member-pw', role: 'member' }, setup.body.csrf);
    await go(b.page, '/login');
    const login = await callAPI(b.page, 'POST', '/auth/login', { name: 'sam', password: 'hearth-member-pw' });
    const samId = login.body.user.id;
    for (const p of [a.page, b.page]) {
      await go(p, '/app/send');
      await p.locator('[data-testid=live][data-state=online]').waitFor();
    }
    await a.page.locator(`[data-testid=send-person][data-user="${samId}"]`).waitFor({ timeout: 20000 });

    const file = join(tmp, 'bench.bin');
    const bytes = SIZE_MB * MB;
    await randomFile(file, bytes);
    const bareRates = [];
    const hearthRuns = [];
    for (let round = 0; round < ROUNDS; round++) {
      process.stderr.write(`round ${round + 1}/${ROUNDS}: bare\n`);
      bareRates.push(await bare(a, b, bytes));
      process.stderr.write(`round ${round + 1}/${ROUNDS}: hearth\n`);
      hearthRuns.push(await hearth(a, b, file, bytes, samId));
    }
    await rm(file);
    const big = join(tmp, 'big.bin');
    const bigBytes = BIG_MB * MB;
    await randomFile(big, bigBytes);
    process.stderr.write(`${BIG_MB} MB with heap sampling\n`);
    const bigRun = await hearth(a, b, big, bigBytes, samId, { sampleHeap: true });
    await rm(big);

    const bareRate = median(bareRates);
    const hearthRate = median(hearthRuns.map((r) => r.rate));
    const ratio = hearthRate / bareRate;
    const rows = [
      ['Figure', 'Result', 'Target', 'OK', 'Measured by'],
      [`Bare data channel, ${SIZE_MB} MiB, 64 KiB messages (median of ${ROUNDS})`, `${mbps(bareRate)} MB/s`, '-', '', 'transfer-bench.mjs'],
      [`Hearth transfer, ${SIZE_MB} MiB file, hashed + streamed to disk (median of ${ROUNDS})`, `${mbps(hearthRate)} MB/s`, '-', '', 'transfer-bench.mjs'],
      ['Hearth / bare', ratio.toFixed(2), '>= 0.9', ratio >= 0.9 ? 'ok' : 'MISS', 'transfer-bench.mjs'],
      ['Time to first byte after accept (median)', `${median(hearthRuns.map((r) => r.ttfb)).toFixed(0)} ms`, '-', '', 'transfer-bench.mjs'],
      [`Receiver JS heap growth, ${BIG_MB} MiB file`, `${mbps(bigRun.receiverHeap)} MB`, '< 100 MB', bigRun.receiverHeap < 100e6 ? 'ok' : 'MISS', 'performance.memory'],
      [`Sender JS heap growth, ${BIG_MB} MiB file`, `${mbps(bigRun.senderHeap)} MB`, '< 100 MB', bigRun.senderHeap < 100e6 ? 'ok' : 'MISS', 'performance.memory'],
      [`Hearth transfer, ${BIG_MB} MiB file`, `${mbps(bigRun.rate)} MB/s`, '-', '', 'transfer-bench.mjs'],
    ];
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const line = (r) => '|' + r.map((c, i) => ` ${c.padEnd(w[i])} |`).join('');
    const { readFile } = await import('node:fs/promises');
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    console.log(`Chromium on loopback, ${ROUNDS} rounds alternating; MB = 10^6 bytes; load average at the end ${load} on ${(await import('node:os')).cpus().length} CPUs.`);
    console.log(line(rows[0]));
    console.log('|' + w.map((n) => '-'.repeat(n + 2) + '|').join(''));
    for (const r of rows.slice(1)) console.log(line(r));
    console.log(`\nselected candidate pairs (receiver): bare ${pairTypes.bare}; hearth ${pairTypes.hearth}`);
    console.log(`runs: bare ${bareRates.map(mbps).join(', ')} MB/s; hearth ${hearthRuns.map((r) => mbps(r.rate)).join(', ')} MB/s`);
  } finally {
    await a.close();
    await b.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
