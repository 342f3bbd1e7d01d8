// The voice call of one tab: rooms and who is in them (voice.state), the one call this tab may
// be in (an RTCPeerConnection to the appliance, signalled over the realtime hub), push-to-talk,
// mute, deafen, one-talker floor, per-person volume, and rejoining after a network blip.
// The call outlives the voice page (audio keeps playing while you chat); it ends on leave,
// on sign-out, or when the realtime connection it was made on is stopped.

import { api, ApiError } from '../api.js';
import { playTone, unlockSounds } from './sounds.js';

const PREFIX = 'hearth.voice.';
const RETRY_LIMIT = 4;
const JOIN_TIMEOUT = 20000;

function pref(key, fallback) {
  try {
    const v = localStorage.getItem(PREFIX + key);
    return v === null ? fallback : v;
  } catch {
    return fallback;
  }
}
function setPref(key, value) {
  try {
    if (value === null) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, String(value));
  } catch {
    // Private mode or storage full: the setting lasts for this tab only.
  }
}

/** What a refused join or an ended call means, for people. */
const BYE_WORDS = {
  forbidden: 'You are not allowed to join this voice channel.',
  room_full: 'This voice channel is full. Try again when someone leaves.',
  bad_sdp: 'Hearth could not understand this browser\u2019s call setup. Try another browser.',
  audio_only: 'Hearth accepts voice calls with Opus audio only, and this browser offered something else.',
  shutting_down: 'Hearth is restarting. You will rejoin when it is back.',
  connection_failed: 'The audio connection to Hearth was lost.',
  connect_timeout: 'The audio connection to Hearth could not be set up. A firewall may be blocking it.',
  negotiation_timeout: 'The call stopped responding.',
  removed: 'You were removed from the call.',
  too_fast: 'Too many attempts in a row. Wait a moment and try again.',
  not_joined: 'You are no longer in the call.',
};
// Reasons worth trying again by ourselves (a blip, a restart).
const RETRY_REASONS = new Set(['shutting_down', 'connection_failed', 'connect_timeout', 'negotiation_timeout', 'too_fast']);

const MIC_WORDS = {
  denied: 'The microphone is blocked for Hearth, so you can listen but not talk. Allow the microphone in the browser\u2019s site settings, then leave and join again.',
  missing: 'No microphone was found, so you can listen but not talk.',
  busy: 'The microphone is in use by another app, so you can listen but not talk.',
  insecure: 'Browsers only allow the microphone on a secure (https) connection, so you can listen but not talk here.',
  failed: 'The microphone could not be opened, so you can listen but not talk.',
};

let shared = null; // { live, session }

/** The session for this realtime connection (a new one replaces the last one's). */
export function voiceSession(live) {
  if (shared?.live === live) return shared.session;
  shared?.session.destroy();
  shared = { live, session: createSession(live) };
  return shared.session;
}

function createSession(live) {
  const listeners = new Set();
  const rooms = new Map(); // room id → voice.state data
  let call = null; // the call being joined or in progress
  let wanted = ''; // the room the person chose to be in (rejoined after blips)
  let retries = 0;
  let retryTimer = 0;
  let seq = 0;
  let selfMuted = false;
  let deafened = false;
  let talking = false;
  let mic = 'none'; // ok | denied | missing | busy | insecure | failed | none (not asked yet)
  let message = null; // { kind: 'error'|'info', text }
  let lastSent = 0;
  let lastBye = 0;
  let anchor = null; // an element of the app frame: when it leaves the page, so does the call
  let lastLiveState = live.state;
  let destroyed = false;
  const mode = { value: pref('mode', 'ptt') === 'open' ? 'open' : 'ptt' };
  let pttKey = pref('key', 'Space');

  const sink = document.createElement('div'); // the <audio> elements, one per receive slot
  sink.hidden = true;
  sink.dataset.testid = 'voice-audio';
  document.body.append(sink);

  const emit = () => {
    for (const fn of listeners) fn();
  };

  function send(type, data) {
    lastSent = Date.now();
    return live.send(type, data);
  }

  function say(kind, text) {
    message = text ? { kind, text } : null;
  }

  // ---- Mute, push-to-talk, floor ----

  function effectiveMuted() {
    if (!call?.track || deafened || selfMuted) return true;
    return mode.value === 'ptt' && !talking;
  }

  function applyMute() {
    if (!call) return;
    const muted = effectiveMuted();
    if (call.track) call.track.enabled = !muted;
    if (!call.joinSent || call.sentMuted === muted) return;
    call.sentMuted = muted;
    const st = rooms.get(call.room);
    if (!muted && st?.one_talker && st.floor !== call.participant) send('voice.floor', { room: call.room, action: 'request' });
    send('voice.mute', { room: call.room, muted });
    if (muted && st?.one_talker && st.floor && st.floor === call.participant) {
      send('voice.floor', { room: call.room, action: 'release' });
    }
  }

  function applyVolumes() {
    if (!call) return;
    for (const [mid, audio] of call.audios) {
      const owner = call.mids.get(mid);
      audio.volume = owner ? volumeOf(owner.user_id) : 1;
      audio.muted = deafened;
    }
  }

  function volumeOf(userId) {
    const v = Number(pref('volume.' + userId, '1'));
    return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 1;
  }

  // ---- Joining and leaving ----

  async function join(room, { auto = false } = {}) {
    if (destroyed) return;
    clearTimeout(retryTimer);
    if (!auto) {
      unlockSounds();
      retries = 0;
      say('', '');
    }
    wanted = room;
    teardown();
    const token = ++seq;
    call = {
      room, token, status: 'joining', pc: null, stream: null, track: null, participant: '',
      mids: new Map(), audios: new Map(), queue: Promise.resolve(), joinSent: false, sentMuted: true,
      connectedOnce: false, timer: 0, known: null,
    };
    emit();

    let iceServers = [];
    try {
      const c = await api('GET', '/turn/credentials');
      if (c?.urls) iceServers = [{ urls: c.urls, username: c.username, credential: c.credential }];
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // no_relay (404) or unreachable: direct connections only.
    }
    if (call?.token !== token) return;

    let stream = null;
    if (!navigator.mediaDevices?.getUserMedia) {
      mic = 'insecure';
    } else {
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false });
        mic = 'ok';
      } catch (err) {
        const name = err?.name || '';
        mic = name === 'NotAllowedError' || name === 'SecurityError' ? 'denied'
          : name === 'NotFoundError' || name === 'OverconstrainedError' ? 'missing'
            : name === 'NotReadableError' ? 'busy' : 'failed';
      }
    }
    if (call?.token !== token) {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    if (mic !== 'ok') say('error', MIC_WORDS[mic]);

    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers });
    } catch {
      pc = new RTCPeerConnection(); // a TURN URL this browser rejects: try without it
    }
    call.pc = pc;
    call.stream = stream;
    call.track = stream?.getAudioTracks()[0] || null;
    if (call.track) {
      call.track.enabled = !effectiveMuted();
      pc.addTransceiver(call.track, { direction: 'sendonly', streams: [stream] });
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    pc.addEventListener('icecandidate', (event) => {
      if (event.candidate && call?.pc === pc && call.joinSent) {
        send('voice.signal', { room, type: 'candidate', candidate: event.candidate.toJSON() });
      }
    });
    pc.addEventListener('track', (event) => attachTrack(pc, event));
    pc.addEventListener('connectionstatechange', () => onConnectionState(pc));
    try {
      await pc.setLocalDescription(await pc.createOffer());
    } catch {
      if (call?.token === token) fail('This browser could not set up the call.');
      return;
    }
    if (call?.token !== token) return;
    sendJoin();
  }

  /** Sends voice.join for the call's current offer (again after a reconnect of the socket). */
  function sendJoin() {
    if (!call?.pc?.localDescription) return;
    const muted = effectiveMuted();
    const ok = send('voice.join', { room: call.room, sdp: call.pc.localDescription.sdp, muted, deafened });
    call.joinSent = ok;
    call.sentMuted = muted;
    if (!ok) {
      call.status = 'waiting'; // offline: 'hello' joins again
      emit();
      return;
    }
    clearTimeout(call.timer);
    const token = call.token;
    call.timer = setTimeout(() => {
      if (call?.token === token && !call.connectedOnce) retry('connect_timeout');
    }, JOIN_TIMEOUT);
    emit();
  }

  function attachTrack(pc, event) {
    if (call?.pc !== pc) return;
    const mid = event.transceiver?.mid ?? '';
    let audio = call.audios.get(mid);
    if (!audio) {
      audio = document.createElement('audio');
      audio.autoplay = true;
      audio.dataset.mid = mid;
      call.audios.set(mid, audio);
      sink.append(audio);
    }
    audio.srcObject = event.streams?.[0] || new MediaStream([event.track]);
    applyVolumes();
    audio.play().catch((err) => {
      if (err?.name === 'NotAllowedError' && call?.pc === pc) {
        call.blocked = true;
        emit();
      }
    });
  }

  /** After a tap: plays audio the browser held back for want of a gesture. */
  function resumeAudio() {
    unlockSounds();
    if (!call) return;
    call.blocked = false;
    for (const audio of call.audios.values()) audio.play().catch(() => {});
    emit();
  }

  function onConnectionState(pc) {
    if (call?.pc !== pc) return;
    const state = pc.connectionState;
    if (state === 'connected') {
      clearTimeout(call.timer);
      call.status = 'connected';
      retries = 0;
      if (!call.connectedOnce) {
        call.connectedOnce = true;
        if (!deafened) playTone('self');
        if (message?.kind === 'info') say('', '');
      }
    } else if (state === 'disconnected') {
      call.status = 'reconnecting';
    } else if (state === 'failed') {
      retry('connection_failed');
      return;
    }
    emit();
  }

  function retry(reason) {
    if (!wanted) return;
    if (retries >= RETRY_LIMIT) {
      fail(BYE_WORDS[reason] || 'The call ended.');
      return;
    }
    retries++;
    const room = wanted;
    teardown();
    call = null;
    say('info', 'Reconnecting to the call\u2026');
    emit();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      if (wanted === room && live.state === 'online') join(room, { auto: true });
    }, 500 * 2 ** retries);
  }

  function fail(text) {
    wanted = '';
    teardown();
    say('error', text);
    emit();
  }

  function teardown() {
    if (!call) return;
    clearTimeout(call.timer);
    const { pc, stream, audios } = call;
    call = null;
    talking = false;
    try {
      pc?.close();
    } catch {
      // already closed
    }
    stream?.getTracks().forEach((t) => t.stop());
    for (const audio of audios.values()) {
      audio.srcObject = null;
      audio.remove();
    }
  }

  function leave() {
    clearTimeout(retryTimer);
    const room = call?.room || wanted;
    if (!room) return;
    if (call?.joinSent) send('voice.leave', { room });
    wanted = '';
    teardown();
    if (!deafened) playTone('leave');
    say('', '');
    emit();
  }

  // ---- Messages from the appliance ----

  function onSignal(data) {
    if (!call || !data || data.room !== call.room || !call.pc) return;
    const c = call;
    if (data.type === 'answer' && data.participant) c.participant = data.participant;
    if (data.type === 'bye') {
      onBye(data);
      return;
    }
    if (data.type === 'tracks') {
      c.mids = new Map((data.tracks || []).map((t) => [String(t.mid), t]));
      applyVolumes();
      emit();
      return;
    }
    c.queue = c.queue.then(() => negotiate(c, data)).catch((err) => {
      if (call === c) console.warn('voice signalling', err);
    });
  }

  async function negotiate(c, data) {
    const { pc } = c;
    if (call !== c || pc.signalingState === 'closed') return;
    if (data.type === 'answer') {
      if (pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription({ type: 'answer', sdp: data.sdp });
      if (c.status === 'joining') c.status = 'connecting';
      emit();
    } else if (data.type === 'offer') {
      // The polite peer: an offer of ours still outstanding is rolled back.
      if (pc.signalingState !== 'stable') await pc.setLocalDescription({ type: 'rollback' });
      await pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
      await pc.setLocalDescription();
      if (call !== c) return;
      send('voice.signal', { room: c.room, participant: c.participant, type: 'answer', sdp: pc.localDescription.sdp });
    } else if (data.type === 'candidate' && data.candidate) {
      try {
        await pc.addIceCandidate(data.candidate);
      } catch {
        // A candidate for an older description, or one this browser cannot use.
      }
    }
  }

  function onBye(data) {
    lastBye = Date.now();
    const reason = data.reason || '';
    if (RETRY_REASONS.has(reason) && wanted) {
      retry(reason);
      return;
    }
    const text = BYE_WORDS[reason] || data.message || 'The call ended.';
    fail(text.charAt(0).toUpperCase() + text.slice(1));
  }

  function onState(data) {
    if (!data?.room) return;
    const before = rooms.get(data.room);
    if (!data.participants?.length) rooms.delete(data.room);
    else rooms.set(data.room, data);
    if (call && data.room === call.room && call.participant) {
      const ids = new Set((data.participants || []).map((p) => p.id));
      if (call.known && !deafened) {
        const came = [...ids].some((id) => id !== call.participant && !call.known.has(id));
        const went = [...call.known].some((id) => id !== call.participant && !ids.has(id));
        if (came) playTone('join');
        else if (went) playTone('leave');
      }
      if (ids.has(call.participant)) call.known = ids;
      if (data.one_talker && data.floor === call.participant && before?.floor !== call.participant && !deafened) playTone('talk');
      // The floor went elsewhere or the mode changed under us: say it again.
      if (data.one_talker && !effectiveMuted() && !data.floor) send('voice.floor', { room: call.room, action: 'request' });
    }
    emit();
  }

  function onError(data) {
    if (Date.now() - lastSent > 3000 || Date.now() - lastBye < 1500 || !wanted) return;
    const text = String(data?.message || '');
    if (!text) return;
    if (/not in this voice channel/.test(text)) return; // a message crossed a leave or rejoin
    say('error', text.charAt(0).toUpperCase() + text.slice(1) + '.');
    emit();
  }

  function onHello() {
    rooms.clear();
    live.send('voice.sync', {});
    if (wanted) {
      // The socket was new: the appliance ended the old call, so join again from scratch.
      retries = 0;
      join(wanted, { auto: true });
    }
    emit();
  }

  const offs = [
    live.on('voice.signal', onSignal),
    live.on('voice.state', onState),
    live.on('error', onError),
    live.on('hello', onHello),
  ];
  if (live.state === 'online') live.send('voice.sync', {});

  // Notices the socket going down (the call's signalling is gone) and the frame going away.
  const watch = setInterval(() => {
    if (anchor && !anchor.isConnected) {
      session.destroy();
      return;
    }
    if (live.state !== lastLiveState) {
      lastLiveState = live.state;
      if (live.state !== 'online' && call) {
        call.status = 'reconnecting';
        emit();
      }
    }
  }, 1000);

  const session = {
    on(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Ties the call to the app frame: when it is gone (signed out), the call ends. */
    attach(el) {
      anchor = el;
    },
    get rooms() {
      return rooms;
    },
    get call() {
      return call;
    },
    get wanted() {
      return wanted;
    },
    get me() {
      return call?.participant || '';
    },
    get message() {
      return message;
    },
    get mic() {
      return mic;
    },
    get mode() {
      return mode.value;
    },
    get selfMuted() {
      return selfMuted;
    },
    get deafened() {
      return deafened;
    },
    get talking() {
      return talking;
    },
    get muted() {
      return effectiveMuted();
    },
    get pttKey() {
      return pttKey;
    },
    get pc() {
      return call?.pc || null;
    },
    join,
    leave,
    resumeAudio,
    dismiss() {
      say('', '');
      emit();
    },
    /** Push-to-talk held (true) or released (false). */
    talk(on) {
      if (talking === on) return;
      talking = on && Boolean(call);
      applyMute();
      emit();
    },
    setMode(value) {
      mode.value = value === 'open' ? 'open' : 'ptt';
      setPref('mode', mode.value);
      talking = false;
      applyMute();
      emit();
    },
    setMuted(on) {
      selfMuted = on;
      applyMute();
      emit();
    },
    setDeafened(on) {
      deafened = on;
      if (call?.joinSent) send('voice.deafen', { room: call.room, deafened: on });
      applyVolumes();
      applyMute();
      emit();
    },
    setOneTalker(on) {
      if (call?.joinSent) send('voice.mode', { room: call.room, one_talker: on });
    },
    setPttKey(code) {
      pttKey = code || 'Space';
      setPref('key', code && code !== 'Space' ? code : null);
      emit();
    },
    volume: volumeOf,
    setVolume(userId, value) {
      setPref('volume.' + userId, Math.round(value * 100) / 100);
      applyVolumes();
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      clearInterval(watch);
      clearTimeout(retryTimer);
      if (call?.joinSent) live.send('voice.leave', { room: call.room });
      wanted = '';
      teardown();
      for (const off of offs) off();
      listeners.clear();
      sink.remove();
      if (shared?.session === session) shared = null;
    },
  };
  if (navigator.webdriver) window.__hearthVoice = session; // browser tests read pc.getStats()
  return session;
}
