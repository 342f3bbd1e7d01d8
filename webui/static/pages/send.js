// /app/send: pick files (or a folder, a drop, pasted text), pick a device or a person among
// those online, or share with a guest by code and QR; live cards per transfer; leave files as
// a direct-message attachment for someone offline; the transfer history.

import { api, ApiError, qrURL, upload } from '../api.js';
import { h, icon, show, timeEl } from '../ui.js';
import { bytesText, safeName } from '../transfer/protocol.js';
import { currentManager, transferManager } from '../transfer/session.js';
import { filesSummary, transferCard } from '../transfer/view.js';

const RELAY_PREF = 'hearth.transfer.relayOnly';
const REFRESH_EVERY = 15000;

function relayPref() {
  try {
    return localStorage.getItem(RELAY_PREF) === '1';
  } catch {
    return false;
  }
}

/** Files shared into the app through the PWA share target (sw.js keeps them in a cache). */
async function sharedFiles() {
  if (!('caches' in window)) return [];
  const cache = await caches.open('hearth-share');
  const out = [];
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    if (res) {
      const name = decodeURIComponent(res.headers.get('X-Name') || 'file');
      out.push(new File([await res.blob()], name, { type: res.headers.get('Content-Type') || '' }));
    }
    await cache.delete(req);
  }
  return out;
}

export function render(view, ctx) {
  document.title = 'Send files · Hearth';
  const manager = currentManager() || transferManager(ctx.live);
  const chosen = []; // File objects, .relPath for folder files
  const cards = new Map(); // transfer id → card
  let devices = [];
  let people = [];
  let destroyed = false;

  // ---- What to send ----
  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'send-file-input' });
  const folderInput = h('input', { type: 'file', multiple: true, webkitdirectory: true, hidden: true, 'data-testid': 'send-folder-input' });
  const note = h('textarea', { id: 'send-note', rows: 3, placeholder: 'Type or paste text to send as a note', 'data-testid': 'send-note' });
  const noteBox = h('div', { class: 'tx-note', hidden: true },
    h('label', { for: 'send-note', text: 'Note' }), note,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => { noteBox.hidden = true; } }),
      h('button', { type: 'button', class: 'primary', 'data-testid': 'send-note-add', text: 'Add note', onclick: addNote })));
  const chosenList = h('ul', { class: 'tx-chosen', 'data-testid': 'send-chosen' });
  const chosenSum = h('p', { class: 'muted small', 'data-testid': 'send-chosen-sum' });
  const drop = h('div', { class: 'tx-drop', 'data-testid': 'send-drop' },
    h('span', { class: 'tx-drop-icon', 'aria-hidden': 'true' }, icon('send')),
    h('p', { class: 'tx-drop-text', text: 'Drop files or a folder here, or' }),
    h('div', { class: 'tx-pick-buttons' },
      h('button', { type: 'button', class: 'primary', 'data-testid': 'send-pick-files', text: 'Choose files', onclick: () => fileInput.click() }),
      h('button', { type: 'button', 'data-testid': 'send-pick-folder', text: 'Choose a folder', onclick: () => folderInput.click() }),
      h('button', { type: 'button', 'data-testid': 'send-write-note', text: 'Write a note', onclick: () => {
        noteBox.hidden = false;
        note.focus();
      } })),
    fileInput, folderInput);

  function addFiles(list) {
    for (const f of list) {
      if (!f.relPath) f.relPath = safeName(f.webkitRelativePath || f.name);
      chosen.push(f);
    }
    drawChosen();
  }
  function addNote() {
    const text = note.value;
    if (!text.trim()) return;
    const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ').replace(':', '.');
    addFiles([new File([text], `Note ${stamp}.txt`, { type: 'text/plain' })]);
    note.value = '';
    noteBox.hidden = true;
  }
  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
  });
  folderInput.addEventListener('change', () => {
    addFiles([...folderInput.files]);
    folderInput.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    addFiles(await droppedFiles(e.dataTransfer));
  });
  const onPaste = (e) => {
    if (e.target.closest?.('textarea, input')) return;
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      addFiles(files);
      e.preventDefault();
      return;
    }
    const text = e.clipboardData?.getData('text/plain');
    if (text) {
      note.value = text;
      noteBox.hidden = false;
      e.preventDefault();
    }
  };
  document.addEventListener('paste', onPaste);

  function drawChosen() {
    chosenList.replaceChildren(...chosen.slice(0, 200).map((f, i) => h('li', { class: 'tx-chosen-item' },
      h('span', { class: 'tx-name', text: f.relPath }),
      h('span', { class: 'muted small', text: bytesText(f.size) }),
      h('button', { type: 'button', class: 'quiet icon-button', 'aria-label': `Remove ${f.relPath}`,
        onclick: () => {
          chosen.splice(i, 1);
          drawChosen();
        } }, icon('close')))));
    if (chosen.length > 200) chosenList.append(h('li', { class: 'muted', text: `and ${chosen.length - 200} more` }));
    const total = chosen.reduce((n, f) => n + f.size, 0);
    chosenSum.textContent = chosen.length ? filesSummary(chosen, total) : 'Nothing chosen yet.';
    for (const b of view.querySelectorAll('[data-needs-files]')) b.disabled = chosen.length === 0;
  }

  // ---- Who gets them ----
  const relay = h('input', { type: 'checkbox', id: 'send-relay', 'data-testid': 'send-relay', checked: relayPref() });
  relay.addEventListener('change', () => {
    try {
      localStorage.setItem(RELAY_PREF, relay.checked ? '1' : '0');
    } catch {
      // private mode: this page only
    }
  });
  const whoList = h('div', { class: 'tx-people', 'data-testid': 'send-people', 'aria-busy': 'true' });
  const whoError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'send-error', hidden: true });
  const guestBox = h('div', { class: 'tx-guest', 'data-testid': 'send-guest', hidden: true });
  const guestButton = h('button', { type: 'button', 'data-testid': 'send-guest-start', 'data-needs-files': true,
    text: 'Share with someone without an account', onclick: shareWithGuest });

  async function refresh() {
    try {
      const [dev, dir] = await Promise.all([api('GET', '/transfer/devices'), api('GET', '/users').catch(() => ({ users: [] }))]);
      if (destroyed) return;
      devices = dev.devices || dev || [];
      people = (dir.users || []).filter((u) => u.id !== ctx.user.id);
      drawPeople();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(whoError, err.message);
    }
  }

  function drawPeople() {
    const byUser = new Map();
    for (const d of devices) {
      if (!byUser.has(d.user_id)) byUser.set(d.user_id, { id: d.user_id, name: d.name, devices: [] });
      byUser.get(d.user_id).devices.push(d);
    }
    const online = [...byUser.values()].sort((a, b) => (a.id === ctx.user.id) - (b.id === ctx.user.id) || a.name.localeCompare(b.name));
    const offline = people.filter((u) => !byUser.has(u.id)).sort((a, b) => a.name.localeCompare(b.name));
    const display = (id, fallback) => {
      const u = people.find((p) => p.id === id);
      return id === ctx.user.id ? 'Your other devices' : (u?.display_name || fallback);
    };
    whoList.removeAttribute('aria-busy');
    whoList.replaceChildren(
      online.length ? h('ul', { class: 'tx-person-list' }, online.map((p) => h('li', { class: 'tx-person', 'data-testid': 'send-person', 'data-user': p.id },
        h('div', { class: 'tx-person-head' },
          h('strong', { text: display(p.id, p.name) }),
          p.devices.length > 1 && p.id !== ctx.user.id ? h('button', { type: 'button', class: 'quiet', 'data-needs-files': true,
            'data-testid': 'send-to-person', text: 'Send to all their devices',
            onclick: () => start({ to_user: p.id }, display(p.id, p.name)) }) : null),
        h('div', { class: 'tx-devices' }, p.devices.map((d) => h('button', { type: 'button', class: 'tx-device',
          'data-needs-files': true, 'data-testid': 'send-to-device', 'data-session': d.session_id,
          onclick: () => start({ to_session: d.session_id },
            `${display(p.id, p.name)} (${d.device || 'device'})`) },
        icon('devices'), h('span', { text: d.device || 'Device' }))))))) :
        h('p', { class: 'muted', 'data-testid': 'send-nobody', text: 'No other device is online right now.' }),
      offline.length ? h('details', { class: 'tx-offline', 'data-testid': 'send-offline' },
        h('summary', { text: `Offline (${offline.length}) \u2014 leave files for them` }),
        h('ul', {}, offline.map((u) => h('li', { class: 'tx-offline-person' },
          h('span', { text: u.display_name || u.name }),
          h('button', { type: 'button', class: 'quiet', 'data-needs-files': true, 'data-testid': 'send-leave', 'data-user': u.id,
            text: 'Leave files', onclick: () => leaveFiles(u) }))))) : null);
    drawChosen();
  }

  async function start(target, peerName) {
    show(whoError, '');
    if (!chosen.length) return;
    try {
      await manager.offer(target, [...chosen], { relayOnly: relay.checked, peerName });
      chosen.length = 0;
      drawChosen();
    } catch (err) {
      if (err?.reason === 'offline' && target.to_user) {
        const u = people.find((p) => p.id === target.to_user);
        if (u) {
          offerLeave(u);
          return;
        }
      }
      show(whoError, err.message);
    }
  }

  function offerLeave(u) {
    whoError.replaceChildren(`${u.display_name || u.name} is not online. `,
      h('button', { type: 'button', class: 'quiet', text: 'Leave the files for them', onclick: () => leaveFiles(u) }));
    whoError.hidden = false;
  }

  // Offline delivery (PROTOCOL.md 5): a DM with the files as attachments.
  async function leaveFiles(u) {
    show(whoError, '');
    const files = [...chosen];
    if (!files.length) return;
    const box = h('article', { class: 'card tx-card', 'data-testid': 'tx-leave', 'data-state': 'sending' });
    const state = h('p', { class: 'tx-state', role: 'status', text: `Leaving ${filesSummary(files, files.reduce((n, f) => n + f.size, 0))} for ${u.display_name || u.name}\u2026` });
    const bar = h('progress', { class: 'tx-bar', max: 1, value: 0 });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    box.append(h('div', { class: 'tx-head' }, h('span', { class: 'tx-icon', 'aria-hidden': 'true' }, icon('chat')),
      h('h3', { class: 'tx-title', text: `To ${u.display_name || u.name} (as a message)` })), state, bar, err);
    active.prepend(box);
    chosen.length = 0;
    drawChosen();
    try {
      const { channel } = await api('POST', '/dms', { body: { members: [u.id] } });
      const total = files.reduce((n, f) => n + f.size, 0) || 1;
      let done = 0;
      const ids = [];
      for (const f of files) {
        const req = upload(`/channels/${encodeURIComponent(channel.id)}/attachments?name=${encodeURIComponent(f.relPath)}`, f, {
          onProgress: (x) => { bar.value = (done + x * f.size) / total; },
        });
        const res = await req.promise;
        done += f.size;
        ids.push(res.attachment.id);
      }
      await api('POST', `/channels/${encodeURIComponent(channel.id)}/messages`, {
        body: { text: files.length === 1 ? 'I left a file for you.' : `I left ${files.length} files for you.`, attachments: ids },
      });
      bar.value = 1;
      box.dataset.state = 'done';
      state.textContent = `Left for ${u.display_name || u.name}: they will find it in your direct messages.`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      box.dataset.state = 'failed';
      show(err, e.message);
    }
  }

  // ---- Guests ----
  async function shareWithGuest() {
    show(whoError, '');
    if (!chosen.length) return;
    let t;
    try {
      t = await manager.offer({ guest: true }, [...chosen], { relayOnly: true, peerName: 'a guest' });
    } catch (err) {
      show(whoError, err.message);
      return;
    }
    chosen.length = 0;
    drawChosen();
    const code = String(t.code || '');
    const shown = code.length === 10 ? code.slice(0, 5) + '-' + code.slice(5) : code;
    const link = `${location.origin}/t/${code}`;
    const copied = h('p', { class: 'form-status', role: 'status' });
    guestBox.replaceChildren(
      h('div', { class: 'tx-guest-text' },
        h('h3', { text: 'Share with a guest' }),
        h('p', { class: 'muted', text: 'They scan the QR code with their phone\u2019s camera or open the link; no account needed. The code works once, for 10 minutes, and the files go through Hearth\u2019s relay only.' }),
        h('p', { class: 'tx-code mono', 'data-testid': 'send-guest-code', text: shown }),
        h('p', { class: 'invite-link mono', 'data-testid': 'send-guest-link', text: link }),
        h('button', { type: 'button', class: 'primary', text: 'Copy link', onclick: async () => {
          try {
            await navigator.clipboard.writeText(link);
            show(copied, 'Copied.');
          } catch {
            show(copied, 'Select the link and copy it.');
          }
        } }), copied),
      h('figure', { class: 'qr-figure' },
        h('img', { class: 'qr', src: qrURL(link), alt: 'QR code of the guest link', width: 192, height: 192, 'data-testid': 'send-guest-qr' }),
        h('figcaption', { class: 'muted small', text: 'Scan to receive' })));
    guestBox.hidden = false;
    guestBox.dataset.id = t.id;
    guestBox.scrollIntoView({ block: 'center', behavior: 'smooth' });
  }

  // ---- Transfers on screen ----
  const active = h('div', { class: 'tx-active', 'data-testid': 'send-active' });
  function drawCard(t) {
    let card = cards.get(t.id);
    if (!card) {
      if (t.state === 'incoming') return;
      card = transferCard(manager, t);
      cards.set(t.id, card);
      active.prepend(card.el);
      if (t.state !== 'done') card.el.scrollIntoView?.({ block: 'nearest' });
    }
    card.update();
    if (guestBox.dataset.id === t.id && t.state !== 'waiting') guestBox.hidden = true;
  }
  for (const t of manager.transfers) drawCard(t);
  const offManager = manager.on((kind, t) => {
    if (kind === 'gone') {
      cards.get(t.id)?.el.remove();
      cards.delete(t.id);
      return;
    }
    if (kind === 'update' || kind === 'progress') drawCard(t);
    if (kind === 'update' && ['done', 'failed', 'cancelled'].includes(t.state)) loadHistory();
  });

  // ---- History ----
  const historyList = h('div', { class: 'tx-history', 'data-testid': 'send-history' });
  const clear = h('button', { type: 'button', class: 'quiet danger', 'data-testid': 'send-history-clear', text: 'Clear history',
    onclick: async () => {
      try {
        await api('DELETE', '/transfer/history');
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      }
      loadHistory();
    } });
  async function loadHistory() {
    try {
      const res = await api('GET', '/transfer/history');
      if (destroyed) return;
      const items = res.transfers || [];
      clear.hidden = !items.length;
      historyList.replaceChildren(items.length
        ? h('ul', { class: 'tx-history-list' }, items.slice(0, 100).map((x) => {
          const received = x.direction === 'received';
          const peer = (x.peer || 'someone') + (x.peer_device ? ` (${x.peer_device})` : '');
          return h('li', { class: 'tx-history-item', 'data-testid': 'send-history-item', 'data-result': x.result },
            h('span', { class: 'tx-icon', 'aria-hidden': 'true' }, icon(received ? 'down' : 'send')),
            h('span', { class: 'tx-history-what' },
              h('strong', { class: 'tx-name', text: historyFiles(x) }),
              h('span', { class: 'muted small', text: `${received ? 'from' : 'to'} ${peer} \u00b7 ${bytesText(Number(x.total) || 0)}` })),
            h('span', { class: `badge ${x.result === 'done' ? 'ok' : x.result === 'failed' ? 'danger' : ''}`, text: RESULT_WORDS[x.result] || x.result || '' }),
            x.time ? timeEl(x.time) : null);
        }))
        : h('p', { class: 'muted', text: 'Nothing sent or received yet.' }));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      historyList.replaceChildren(h('p', { class: 'muted', text: err.message }));
    }
  }

  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Send files' }),
    active,
    h('section', { class: 'card tx-section', 'aria-labelledby': 'send-what' },
      h('h2', { id: 'send-what', text: 'What to send' }), drop, noteBox, chosenList, chosenSum),
    h('section', { class: 'card tx-section', 'aria-labelledby': 'send-who' },
      h('h2', { id: 'send-who', text: 'Who gets it' }),
      h('label', { class: 'tx-switch', for: 'send-relay' }, relay,
        h('span', {}, h('strong', { text: 'Relay only' }),
          h('span', { class: 'muted small tx-switch-hint', text: ' \u2014 go through Hearth\u2019s relay so the other device never sees this one\u2019s network address' }))),
      whoList, whoError,
      h('div', { class: 'tx-guest-row' }, guestButton), guestBox),
    h('section', { class: 'card tx-section', 'aria-labelledby': 'send-history-title' },
      h('div', { class: 'tx-section-head' }, h('h2', { id: 'send-history-title', text: 'History' }), clear),
      historyList));

  if (new URLSearchParams(location.search).has('shared')) {
    sharedFiles().then((files) => {
      if (!destroyed && files.length) addFiles(files);
    }, () => {});
    history.replaceState(null, '', '/app/send');
  }
  drawChosen();
  refresh();
  loadHistory();
  const offs = [
    ctx.live.on('presence', () => refresh()),
    ctx.live.on('hello', () => refresh()),
  ];
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_EVERY);

  return {
    destroy() {
      destroyed = true;
      clearInterval(timer);
      for (const off of offs) off();
      offManager();
      document.removeEventListener('paste', onPaste);
    },
  };
}

const RESULT_WORDS = { done: 'Done', failed: 'Failed', cancelled: 'Cancelled', declined: 'Declined', expired: 'Expired' };

function historyFiles(x) {
  const n = Number(x.file_count) || (Array.isArray(x.files) ? x.files.length : 0);
  if (n === 1 && x.files?.[0]?.name) return x.files[0].name;
  return n === 1 ? '1 file' : `${n} files`;
}

/** The files of a drop, folders walked (entries API), each with its path as relPath. */
async function droppedFiles(dt) {
  const items = [...(dt?.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!items.length) return [...(dt?.files || [])];
  const out = [];
  const walk = async (entry, prefix) => {
    if (out.length >= 10000) return;
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      file.relPath = safeName(prefix + file.name);
      out.push(file);
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const e of batch) await walk(e, prefix + entry.name + '/');
    }
  };
  for (const e of items) await walk(e, '');
  return out;
}
