// Hearth's download service worker (scope /transfer/): streams a received file to the
// browser's download manager without holding it in memory. The page sends
// {op:'open', id, name, size, port}; the navigation to /transfer/dl/<id> is answered with a
// stream fed by that port: {buf} adds bytes, {op:'close'} finishes the download and
// {op:'abort'} fails it (the browser then deletes the partial file).
// It also takes the PWA share target (manifest share_target, POST /transfer/share): the shared
// files (and text, as a note) wait in the Cache API ("hearth-share") until the Send page,
// opened as /app/send?shared=1, picks them up.

'use strict';

const pending = new Map(); // id → { name, size, port }

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  const msg = event.data || {};
  if (msg.op === 'open' && typeof msg.id === 'string' && msg.port) {
    pending.set(msg.id, msg);
    msg.port.postMessage({ op: 'opened' });
  }
});

function contentDisposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

const SHARE_CACHE = 'hearth-share';

async function takeShare(request) {
  const form = await request.formData();
  const cache = await caches.open(SHARE_CACHE);
  for (const key of await cache.keys()) await cache.delete(key);
  let n = 0;
  const put = (name, type, body) => cache.put(`/transfer/shared/${n++}`, new Response(body, {
    headers: { 'Content-Type': type || 'application/octet-stream', 'X-Name': encodeURIComponent(name) },
  }));
  for (const file of form.getAll('files')) {
    if (file && typeof file === 'object' && file.size >= 0) await put(file.name || 'file', file.type, file);
  }
  const text = ['title', 'text', 'url'].map((k) => form.get(k)).filter((v) => typeof v === 'string' && v.trim()).join('\n');
  if (text) await put('Shared note.txt', 'text/plain', text);
  return Response.redirect('/app/send?shared=1', 303);
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.pathname === '/transfer/share' && event.request.method === 'POST') {
    event.respondWith(takeShare(event.request).catch(() => Response.redirect('/app/send', 303)));
    return;
  }
  const m = /^\/transfer\/dl\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
  if (!m) return;
  const item = pending.get(m[1]);
  if (!item) {
    event.respondWith(new Response('This download has ended.', { status: 404 }));
    return;
  }
  pending.delete(m[1]);
  const port = item.port;
  const stream = new ReadableStream({
    start(controller) {
      port.onmessage = (e) => {
        const d = e.data || {};
        if (d.buf) {
          controller.enqueue(new Uint8Array(d.buf));
        } else if (d.op === 'close') {
          controller.close();
          port.close();
        } else if (d.op === 'abort') {
          controller.error(new Error(d.reason || 'aborted'));
          port.close();
        }
      };
      port.postMessage({ op: 'started' });
    },
    cancel() {
      port.postMessage({ op: 'cancelled' });
    },
  });
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': contentDisposition(item.name),
    'X-Content-Type-Options': 'nosniff',
  };
  if (Number.isSafeInteger(item.size)) headers['Content-Length'] = String(item.size);
  event.respondWith(new Response(stream, { headers }));
});
