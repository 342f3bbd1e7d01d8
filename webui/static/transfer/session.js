// The transfers of one realtime connection: offers, accept/decline, WebRTC signaling over the
// hub (PROTOCOL.md 2), one PeerConnection per transfer with the data channel run by peer.js,
// progress with speed and time left, cancel, resume after a drop, and the history result.
// Pages subscribe with on(fn); fn(kind, transfer) hears 'incoming', 'update' and 'gone'.

import { api, ApiError } from '../api.js';
import { createReceiveState, createSendState, runReceiver, runSender, TransferError } from './peer.js';
import { LABEL, nonce, RESUME_WAIT, verification } from './protocol.js';

const SIGNAL_TIMEOUT = 15000;
const CONNECT_TIMEOUT = 30000;

/** Words for the server's refusal codes (PROTOCOL.md 2). */
export const CODE_WORDS = {
  offline: 'Nobody is online there right now.',
  taken: 'Another device already accepted this transfer.',
  expired: 'This transfer has expired.',
  not_found: 'This transfer no longer exists.',
  not_party: 'This transfer is not yours.',
  too_large: 'That is too much for one transfer (at most 10,000 files).',
  too_fast: 'Too many requests in a row. Wait a moment and try again.',
  stale: 'This device\u2019s clock is wrong, so Hearth refused the request. Check the date and time.',
  replayed: 'The request was refused as a repeat. Try again.',
  bad_message: 'Hearth refused the request as malformed.',
};

let shared = null; // { live, manager }

/** The transfer manager for this realtime connection (a new connection replaces the old one's). */
export function transferManager(live, opts = {}) {
  if (shared?.live === live) return shared.manager;
  shared?.manager.destroy();
  shared = { live, manager: createManager(live, opts) };
  window.__hearthTransfer = shared.manager; // for tests and the console, like window.__hearthVoice
  return shared.manager;
}

/** The manager if one exists (null before the app frame started one). */
export function currentManager() {
  return shared?.manager || null;
}

function createManager(live, { guest = false } = {}) {
  const transfers = new Map(); // id → transfer
  const listeners = new Set();
  const pendingRefs = new Map(); // ref → { resolve, reject, timer }
  let refSeq = 0;
  let ticker = 0;

  const emit = (kind, t) => {
    for (const fn of listeners) fn(kind, t);
  };

  function send(type, data = {}) {
    return live.send(type, { ...data, ts: Date.now(), nonce: nonce() });
  }

  /** Sends a message that the server answers (created) or refuses (error with ref). */
  function request(type, data, answerType) {
    const ref = 'q' + ++refSeq + '-' + Math.random().toString(36).slice(2, 8);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pendingRefs.delete(ref);
        reject(new TransferError('Hearth did not answer. Check the connection and try again.', 'timeout'));
      }, SIGNAL_TIMEOUT);
      pendingRefs.set(ref, { resolve, reject, timer, answerType });
      if (!send(type, { ...data, ref })) {
        clearTimeout(timer);
        pendingRefs.delete(ref);
        reject(new TransferError('You are offline. Try again once Hearth is reachable.', 'offline'));
      }
    });
  }

  function settleRef(ref, fn, value) {
    const p = pendingRefs.get(ref);
    if (!p) return false;
    pendingRefs.delete(ref);
    clearTimeout(p.timer);
    p[fn](value);
    return true;
  }

  function update(t) {
    t.changed = Date.now();
    emit('update', t);
  }

  function setState(t, state, error = '') {
    t.state = state;
    if (error) t.error = error;
    update(t);
  }

  // ---- Progress ----

  function bytesDone(t) {
    if (t.sendState) return t.sendState.acked.reduce((a, b) => a + b, 0);
    if (t.recvState?.files) return t.recvState.written.reduce((a, b) => a + (b || 0), 0);
    return 0;
  }

  function tick() {
    const now = performance.now();
    let active = false;
    for (const t of transfers.values()) {
      if (t.state !== 'sending' && t.state !== 'receiving') continue;
      active = true;
      const bytes = bytesDone(t);
      if (t.sample) {
        const dt = (now - t.sample.at) / 1000;
        if (dt >= 0.45) {
          const rate = Math.max(0, bytes - t.sample.bytes) / dt;
          t.speed = t.speed ? t.speed * 0.6 + rate * 0.4 : rate;
          t.sample = { at: now, bytes };
        }
      } else {
        t.sample = { at: now, bytes };
      }
      t.bytes = bytes;
      t.eta = t.speed > 0 ? (t.total - bytes) / t.speed : NaN;
      update(t);
    }
    if (!active) {
      clearInterval(ticker);
      ticker = 0;
    }
  }

  function startTicker() {
    if (!ticker) ticker = setInterval(tick, 500);
  }

  const progressHook = (t) => () => {
    const bytes = bytesDone(t);
    if (bytes !== t.bytes) {
      t.bytes = bytes;
      if (!t.firstByteAt && bytes > 0) t.firstByteAt = performance.now();
      // Progress events for pages and tests; the ticker adds speed and time left.
      emit('progress', t);
    }
  };

  // ---- PeerConnection ----

  async function iceConfig(relayOnly) {
    let iceServers = [];
    try {
      const c = await api('GET', '/turn/credentials', { public: guest });
      if (c?.urls?.length) {
        const urls = relayOnly ? c.urls.filter((u) => /^turns?:/.test(u)) : c.urls;
        iceServers = [{ urls, username: c.username, credential: c.credential }];
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (relayOnly) throw new TransferError('Hearth\u2019s relay could not be reached, and this transfer may only use the relay.', 'no_relay');
    }
    return relayOnly ? { iceServers, iceTransportPolicy: 'relay' } : { iceServers };
  }

  function closePeer(t) {
    clearTimeout(t.connectTimer);
    if (t.pc) {
      t.pc.onicecandidate = null;
      t.pc.onconnectionstatechange = null;
      t.pc.ondatachannel = null;
      try {
        t.pc.close();
      } catch {
        // already closed
      }
    }
    t.pc = null;
    t.dc = null;
    t.remoteSet = false;
    t.candidates = [];
  }

  async function newPeer(t) {
    closePeer(t);
    const gen = (t.gen = (t.gen || 0) + 1);
    const config = await iceConfig(t.relayOnly);
    if (t.gen !== gen || isOver(t)) return null;
    const pc = new RTCPeerConnection(config);
    t.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) {
        send('transfer.signal', { id: t.id, candidate: {
          candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex,
        } });
      }
    };
    pc.onconnectionstatechange = () => {
      if (t.pc !== pc) return;
      if (pc.connectionState === 'failed') {
        // The data channel may not notice: close it so the run ends as lost.
        try {
          t.dc?.close();
        } catch {
          // closing anyway
        }
        if (!t.running) lost(t);
      }
    };
    t.connectTimer = setTimeout(() => {
      if (t.pc === pc && !t.running && !isOver(t)) {
        closePeer(t);
        lost(t, 'The connection could not be set up. A firewall may be blocking it.');
      }
    }, CONNECT_TIMEOUT);
    return pc;
  }

  async function showVerification(t) {
    const pc = t.pc;
    if (!pc?.localDescription || !pc.remoteDescription) return;
    const v = await verification(pc.localDescription.sdp, pc.remoteDescription.sdp);
    if (v && t.pc === pc) {
      t.verification = v;
      update(t);
    }
  }

  async function flushCandidates(t) {
    const list = t.candidates || [];
    t.candidates = [];
    for (const c of list) await t.pc?.addIceCandidate(c).catch(() => {});
  }

  // The sender's side: a new PeerConnection and offer, then the protocol on its channel.
  async function connectAsSender(t) {
    t.connectStarted = Date.now();
    setState(t, 'connecting');
    let pc;
    try {
      pc = await newPeer(t);
    } catch (err) {
      fail(t, err);
      return;
    }
    if (!pc) return;
    const dc = pc.createDataChannel(LABEL);
    t.dc = dc;
    dc.addEventListener('open', () => {
      if (t.pc !== pc) return;
      clearTimeout(t.connectTimer);
      t.running = true;
      if (!t.acceptedAt) t.acceptedAt = performance.now();
      setState(t, 'sending');
      startTicker();
      runSender(dc, t.sendState, t.hooks).then((how) => {
        t.running = false;
        if (how === 'done') finished(t);
        else if (t.pc === pc) lost(t);
      }, (err) => {
        t.running = false;
        fail(t, err);
      });
    }, { once: true });
    await pc.setLocalDescription(await pc.createOffer());
    send('transfer.signal', { id: t.id, sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
  }

  // The receiver's side: a PeerConnection made for each offer that comes.
  async function answerOffer(t, sdp) {
    let pc;
    try {
      pc = await newPeer(t);
    } catch (err) {
      fail(t, err);
      return;
    }
    if (!pc) return;
    setState(t, 'connecting');
    pc.ondatachannel = (e) => {
      if (t.pc !== pc || e.channel.label !== LABEL) return;
      const dc = e.channel;
      t.dc = dc;
      const run = () => {
        clearTimeout(t.connectTimer);
        t.running = true;
        setState(t, 'receiving');
        startTicker();
        runReceiver(dc, t.recvState, t.hooks).then((how) => {
          t.running = false;
          if (how === 'done') finished(t);
          else if (t.pc === pc) lost(t);
        }, (err) => {
          t.running = false;
          fail(t, err);
        });
      };
      if (dc.readyState === 'open') run();
      else dc.addEventListener('open', run, { once: true });
    };
    await pc.setRemoteDescription(sdp);
    t.remoteSet = true;
    await flushCandidates(t);
    await pc.setLocalDescription(await pc.createAnswer());
    send('transfer.signal', { id: t.id, sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
    showVerification(t);
  }

  async function onSignal(data) {
    const t = transfers.get(data.id);
    if (!t || isOver(t)) return;
    try {
      if (data.sdp?.type === 'offer' && t.role === 'receive') {
        await answerOffer(t, data.sdp);
      } else if (data.sdp?.type === 'answer' && t.role === 'send' && t.pc) {
        await t.pc.setRemoteDescription(data.sdp);
        t.remoteSet = true;
        await flushCandidates(t);
        showVerification(t);
      } else if (data.candidate) {
        if (t.pc && t.remoteSet) await t.pc.addIceCandidate(data.candidate).catch(() => {});
        else (t.candidates ||= []).push(data.candidate);
      }
    } catch (err) {
      console.warn('transfer signal', err);
    }
  }

  // ---- Ends ----

  function isOver(t) {
    return ['done', 'failed', 'cancelled', 'declined'].includes(t.state);
  }

  function report(t, result) {
    if (t.reported || !t.accepted) return;
    t.reported = true;
    const files = t.sendState
      ? t.sendState.result.filter((r) => r === 'ok').length
      : (t.recvState?.result || []).filter((r) => r === 'ok').length;
    send('transfer.result', { id: t.id, result, bytes: bytesDone(t), files });
  }

  function finished(t) {
    clearTimeout(t.resumeTimer);
    t.bytes = bytesDone(t);
    t.speed = 0;
    const results = t.sendState ? t.sendState.result : t.recvState.result;
    const bad = results.filter((r) => r === 'bad').length;
    closeSoon(t);
    report(t, bad ? 'failed' : 'done');
    if (bad) {
      setState(t, 'failed', bad === 1 ? 'One file did not arrive intact (its check failed) and was discarded.'
        : `${bad} files did not arrive intact (their check failed) and were discarded.`);
    } else {
      setState(t, 'done');
    }
  }

  function closeSoon(t) {
    const pc = t.pc;
    setTimeout(() => {
      if (t.pc === pc) closePeer(t);
    }, 1000);
  }

  function fail(t, err) {
    if (isOver(t)) return;
    clearTimeout(t.resumeTimer);
    closePeer(t);
    const cancelled = err?.reason === 'cancelled' || err?.reason === 'cancelled_by_peer';
    if (t.recvState?.writer) {
      t.recvState.writer.discard().catch(() => {});
      t.recvState.writer = null;
    }
    report(t, cancelled ? 'cancelled' : 'failed');
    if (cancelled) setState(t, 'cancelled', err.message);
    else setState(t, 'failed', err?.message || String(err));
  }

  /** The channel or connection dropped: wait for both sides, then go on where it stopped. */
  function lost(t, message = '') {
    if (isOver(t) || t.state === 'interrupted') return;
    t.hooks?.abandon?.();
    closePeer(t);
    t.running = false;
    t.speed = 0;
    t.interruptedAt = Date.now();
    setState(t, 'interrupted', message || 'The connection dropped. Hearth will continue when both devices are back.');
    clearTimeout(t.resumeTimer);
    t.resumeTimer = setTimeout(() => {
      if (t.state === 'interrupted') fail(t, new TransferError('The other device did not come back within 10 minutes.', 'timeout'));
    }, RESUME_WAIT);
    if (t.role === 'send') setTimeout(() => tryResume(t), 1000);
    else setTimeout(() => send('transfer.resume', { id: t.id }), 1000);
  }

  function tryResume(t) {
    if (t.state !== 'interrupted' || t.role !== 'send') return;
    send('transfer.resume', { id: t.id });
    connectAsSender(t);
  }

  // ---- Server events ----

  function fromIncoming(data) {
    return {
      id: data.id,
      role: 'receive',
      peer: data.from || {},
      files: Array.isArray(data.files) ? data.files : [],
      total: Number(data.total) || (Array.isArray(data.files) ? data.files.reduce((n, f) => n + (Number(f.size) || 0), 0) : 0),
      relayOnly: Boolean(data.relay_only),
      state: 'incoming',
      bytes: 0,
      speed: 0,
      eta: NaN,
      created: Date.now(),
    };
  }

  const handlers = {
    'transfer.created': (data) => {
      if (data.ref) settleRef(data.ref, 'resolve', data);
    },
    'transfer.incoming': (data) => {
      if (!data?.id || transfers.has(data.id)) return;
      const t = fromIncoming(data);
      transfers.set(t.id, t);
      emit('incoming', t);
    },
    'transfer.accepted': (data) => {
      const t = transfers.get(data.id);
      if (!t || t.role !== 'send' || t.accepted) return;
      t.accepted = true;
      t.acceptedAt = performance.now();
      if (data.peer) t.peer = data.peer;
      t.code = '';
      connectAsSender(t);
    },
    'transfer.declined': (data) => {
      const t = transfers.get(data.id);
      if (!t || isOver(t)) return;
      setState(t, 'declined', `${t.peer?.name || 'They'} declined.`);
    },
    'transfer.taken': (data) => {
      const t = transfers.get(data.id);
      if (t?.state === 'incoming') {
        transfers.delete(t.id);
        emit('gone', t);
      }
    },
    'transfer.cancelled': (data) => {
      const t = transfers.get(data.id);
      if (!t || isOver(t)) return;
      const by = data.by?.name || t.peer?.name || 'The other side';
      if (t.state === 'incoming') {
        transfers.delete(t.id);
        emit('gone', t);
        return;
      }
      t.hooks?.cancel?.('cancelled_by_peer');
      fail(t, new TransferError(`${by} cancelled the transfer.`, 'cancelled_by_peer'));
    },
    'transfer.gone': (data) => {
      const t = transfers.get(data.id);
      if (!t) return;
      if (t.state === 'incoming') {
        transfers.delete(t.id);
        emit('gone', t);
        return;
      }
      if (!isOver(t) && !t.running) fail(t, new TransferError('Hearth forgot this transfer (it waited too long).', 'gone'));
    },
    'transfer.signal': (data) => onSignal(data),
    'transfer.resume': (data) => {
      const t = transfers.get(data.id);
      if (!t || isOver(t)) return;
      if (t.role === 'send') {
        if (t.running) {
          // The receiver lost the channel though it still looks open here: start over on a new one.
          lost(t);
          return;
        }
        // Interrupted, or a reconnect that has hung for a while: offer again.
        if (t.state === 'connecting' && Date.now() - (t.connectStarted || 0) > 10000) t.state = 'interrupted';
        tryResume(t);
      }
      // The receiver waits for the sender's new offer.
    },
    error: (data) => {
      if (data?.ref) {
        settleRef(data.ref, 'reject', new TransferError(CODE_WORDS[data.code] || data.message || 'Hearth refused the request.', data.code));
      }
    },
    hello: () => {
      // Back online: ask to continue what was cut off.
      for (const t of transfers.values()) {
        if (t.state !== 'interrupted') continue;
        if (t.role === 'send') tryResume(t);
        else send('transfer.resume', { id: t.id });
      }
    },
  };
  const offs = Object.entries(handlers).map(([type, fn]) => live.on(type, fn));

  return {
    get transfers() {
      return [...transfers.values()];
    },
    get(id) {
      return transfers.get(id);
    },
    on(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    /**
     * Offers files (File objects, with relPath for folder files) to { to_user } or { to_session }
     * or { guest: true }. Resolves with the transfer (with .code for a guest) or rejects.
     */
    async offer(target, files, { relayOnly = false, peerName = '' } = {}) {
      const manifest = files.map((f) => ({ name: f.relPath || f.name, size: f.size, type: f.type || '' }));
      const created = await request('transfer.offer', { ...target, files: manifest, relay_only: relayOnly }, 'transfer.created');
      const total = files.reduce((n, f) => n + f.size, 0);
      const t = {
        id: created.id,
        role: 'send',
        peer: { name: peerName },
        files: manifest,
        total,
        relayOnly: Boolean(relayOnly || target.guest),
        code: created.code || '',
        expires: created.expires || '',
        guest: Boolean(target.guest),
        state: 'waiting',
        bytes: 0,
        speed: 0,
        eta: NaN,
        created: Date.now(),
        sendState: createSendState(files),
        hooks: {},
      };
      t.hooks.progress = progressHook(t);
      t.hooks.file = () => update(t);
      transfers.set(t.id, t);
      update(t);
      return t;
    },

    /** Accepts an incoming transfer into sink (from sinks.js). */
    accept(id, sink) {
      const t = transfers.get(id);
      if (!t || t.state !== 'incoming') return null;
      t.accepted = true;
      t.acceptedAt = performance.now();
      t.recvState = createReceiveState(sink);
      t.sinkLabel = sink.label;
      t.hooks = {
        progress: progressHook(t),
        file: () => update(t),
        manifest: (files) => {
          t.files = files.map((f) => ({ name: f.name, size: f.size, type: f.type }));
          t.total = files.reduce((n, f) => n + f.size, 0);
        },
      };
      setState(t, 'connecting');
      if (!send('transfer.accept', { id })) {
        fail(t, new TransferError('You are offline. Try again once Hearth is reachable.', 'offline'));
      }
      return t;
    },

    /** Adds a transfer this side learned of another way (a guest's pairing answer). */
    adopt(data) {
      if (transfers.has(data.id)) return transfers.get(data.id);
      const t = fromIncoming(data);
      transfers.set(t.id, t);
      emit('incoming', t);
      return t;
    },

    decline(id) {
      const t = transfers.get(id);
      if (!t) return;
      send('transfer.decline', { id });
      transfers.delete(id);
      emit('gone', t);
    },

    cancel(id) {
      const t = transfers.get(id);
      if (!t || isOver(t)) return;
      send('transfer.cancel', { id, reason: 'cancelled' });
      t.hooks?.cancel?.('cancelled');
      fail(t, new TransferError('You cancelled the transfer.', 'cancelled'));
    },

    /** Forgets a finished transfer from the list on screen. */
    dismiss(id) {
      const t = transfers.get(id);
      if (!t || !isOver(t)) return;
      transfers.delete(id);
      emit('gone', t);
    },

    /** Cuts the connection of a running transfer (tests: resume). */
    drop(id) {
      const t = transfers.get(id);
      try {
        t?.pc?.close();
      } catch {
        // closed
      }
      if (t && !isOver(t)) lost(t);
    },

    destroy() {
      for (const off of offs) off();
      for (const t of transfers.values()) {
        if (!isOver(t) && t.state !== 'incoming') {
          send('transfer.cancel', { id: t.id, reason: 'closed' });
          t.hooks?.cancel?.('closed');
        }
        closePeer(t);
        clearTimeout(t.resumeTimer);
      }
      clearInterval(ticker);
      for (const p of pendingRefs.values()) clearTimeout(p.timer);
      listeners.clear();
      transfers.clear();
      if (shared?.live === live) shared = null;
    },
  };
}
