// The realtime WebSocket: one per tab, with resume after reconnecting, as a small event bus.

const FIRST_DELAY = 1000;
const MAX_DELAY = 30000;
const PING_EVERY = 25000;
const SILENT_LIMIT = 60000; // no message (not even a pong) for this long: the socket is dead
const IDLE_AFTER = 5 * 60 * 1000;

/**
 * Creates the live connection. Nothing is opened before start(since).
 *
 * onState(state) hears 'connecting', 'online' (after the server's hello) and 'offline'.
 * check() is awaited before each reconnect (it notices a lost session) and retried while it fails.
 *
 * Server events reach on(type, fn) listeners (and on('*', fn) with the whole envelope) with
 * fn(data, envelope). Stored events (id > 0) are delivered once each, in order: after a
 * reconnect the server replays what was missed since the last id seen here, and anything at
 * or below that id is dropped as a repeat. The bus also emits 'hello' after every connect.
 */
export function createLive({ onState = () => {}, check = async () => {} } = {}) {
  const listeners = new Map();
  let socket = null;
  let state = 'offline';
  let lastId = 0;
  let started = false;
  let stopped = false;
  let timer = 0;
  let pinger = 0;
  let delay = FIRST_DELAY;
  let heardAt = 0;
  let presence = 'online';
  let idleTimer = 0;

  function setState(next) {
    if (state === next) return;
    state = next;
    onState(next);
  }

  function emit(type, data, env) {
    for (const fn of listeners.get(type) || []) fn(data, env);
    for (const fn of listeners.get('*') || []) fn(data, env);
  }

  function open() {
    clearTimeout(timer);
    if (stopped) return;
    if (!navigator.onLine) {
      setState('offline');
      return; // the 'online' event reconnects
    }
    setState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const query = lastId > 0 ? '?since=' + lastId : '';
    const ws = new WebSocket(scheme + location.host + '/api/v1/ws' + query);
    socket = ws;
    ws.addEventListener('message', (event) => {
      if (ws !== socket) return;
      heardAt = Date.now();
      let env;
      try {
        env = JSON.parse(event.data);
      } catch {
        return; // not ours to understand
      }
      if (!env || typeof env.type !== 'string') return;
      receive(env);
    });
    ws.addEventListener('close', () => {
      if (ws !== socket) return;
      socket = null;
      clearInterval(pinger);
      setState('offline');
      retryLater();
    });
  }

  function receive(env) {
    const id = Number(env.id) || 0;
    if (env.type === 'hello') {
      // Without ?since there is nothing to replay: start counting from the server's newest.
      if (lastId === 0) lastId = Number(env.data?.last_id) || 0;
      delay = FIRST_DELAY;
      heardAt = Date.now();
      clearInterval(pinger);
      pinger = setInterval(heartbeat, PING_EVERY);
      setState('online');
      if (presence !== 'online') send('presence', { state: presence });
      emit('hello', env.data, env);
      return;
    }
    if (env.type === 'resync') {
      // Too far behind to replay: the app reloads its state; live events continue from here.
      lastId = Math.max(lastId, Number(env.data?.last_id) || 0);
      emit('resync', env.data, env);
      return;
    }
    if (id > 0) {
      if (id <= lastId) return; // already seen
      lastId = id;
    }
    emit(env.type, env.data, env);
  }

  function heartbeat() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - heardAt > SILENT_LIMIT) {
      drop();
      return;
    }
    send('ping');
  }

  /** Closes the current socket (if any) so that the close handler reconnects. */
  function drop() {
    const ws = socket;
    socket = null;
    clearInterval(pinger);
    if (ws) ws.close(1000);
    setState('offline');
    retryLater();
  }

  function retryLater() {
    clearTimeout(timer);
    if (stopped || !navigator.onLine) return;
    const wait = delay * (0.75 + Math.random() * 0.5);
    delay = Math.min(delay * 2, MAX_DELAY);
    timer = setTimeout(async () => {
      try {
        await check();
      } catch {
        retryLater();
        return;
      }
      open();
    }, wait);
  }

  function send(type, data) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(data === undefined ? { type } : { type, data }));
    return true;
  }

  // Presence: idle after a while without input, or while the tab is hidden.
  function setPresence(next) {
    if (presence === next) return;
    presence = next;
    send('presence', { state: next });
  }
  function active() {
    clearTimeout(idleTimer);
    if (document.visibilityState === 'hidden') {
      setPresence('idle');
      return;
    }
    setPresence('online');
    idleTimer = setTimeout(() => setPresence('idle'), IDLE_AFTER);
  }
  const activity = ['keydown', 'pointerdown', 'visibilitychange'];

  const onOnline = () => {
    delay = FIRST_DELAY;
    if (started && !socket) open();
  };
  const onOffline = () => {
    if (socket) drop();
  };

  return {
    /** Opens the connection; since is the newest event id already reflected in the app's state. */
    start(since = 0) {
      if (started || stopped) return;
      started = true;
      lastId = Math.max(lastId, Number(since) || 0);
      window.addEventListener('online', onOnline);
      window.addEventListener('offline', onOffline);
      for (const type of activity) document.addEventListener(type, active, { passive: true });
      active();
      open();
    },
    /** Adds a listener; returns a function that removes it. */
    on(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type)?.delete(fn);
    },
    /** Sends {type, data} when connected; returns false (and drops it) when not. */
    send,
    get state() {
      return state;
    },
    get lastId() {
      return lastId;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(idleTimer);
      clearInterval(pinger);
      window.removeEventListener('online', onOnline);
      window.removeEventListener('offline', onOffline);
      for (const type of activity) document.removeEventListener(type, active);
      listeners.clear();
      if (socket) socket.close(1000);
      socket = null;
    },
  };
}
