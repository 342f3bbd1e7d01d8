// The realtime WebSocket. For now the app frame only shows whether it is connected.

const MAX_DELAY = 30000;

/**
 * Keeps a WebSocket to /api/v1/ws open, reconnecting with backoff, and reports
 * 'connecting', 'online' (after the server's hello) or 'offline'. Before reconnecting it
 * awaits check() (which notices a lost session) and waits longer while that fails.
 * Returns a stop function.
 */
export function connectLive(onState, check) {
  let socket = null;
  let timer = 0;
  let delay = 1000;
  let stopped = false;

  function open() {
    onState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    socket = new WebSocket(scheme + location.host + '/api/v1/ws');
    socket.addEventListener('message', (event) => {
      if (typeof event.data === 'string' && event.data.includes('"hello"')) {
        delay = 1000;
        onState('online');
      }
    });
    socket.addEventListener('close', () => {
      onState('offline');
      retryLater();
    });
  }

  function retryLater() {
    if (stopped) return;
    timer = setTimeout(async () => {
      try {
        await check();
      } catch {
        retryLater();
        return;
      }
      if (!stopped) open();
    }, delay);
    delay = Math.min(delay * 2, MAX_DELAY);
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket.close(1000);
  };
}
