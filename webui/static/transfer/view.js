// Transfer pieces shared by the Send page, the guest page and the app frame: the incoming-offer
// dialog (shown on any page), a live card per transfer (progress per file and in total, speed,
// time left, verification string, cancel), and the frame's hook that starts the manager.

import { h, icon } from '../ui.js';
import { bytesText, etaText } from './protocol.js';
import { transferManager } from './session.js';
import { canPickFolder, downloadSink, pickFolderSink, prepareDownloads } from './sinks.js';

const STATE_WORDS = {
  waiting: 'Waiting for them to accept\u2026',
  incoming: 'Waiting for you to accept',
  connecting: 'Connecting\u2026',
  sending: 'Sending',
  receiving: 'Receiving',
  interrupted: 'Connection lost \u2014 waiting to continue\u2026',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
  declined: 'Declined',
};

/** "3 files, 1.2 GB" */
export function filesSummary(files, total) {
  const n = files.length;
  return `${n === 1 ? '1 file' : `${n.toLocaleString()} files`}, ${bytesText(total)}`;
}

function who(peer) {
  if (!peer) return 'someone';
  if (peer.guest || String(peer.user_id || '').startsWith('guest:')) return 'a guest';
  const device = peer.device ? ` (${peer.device})` : '';
  return (peer.name || 'someone') + device;
}

/**
 * Starts the transfer manager for the app frame's realtime connection and shows the incoming
 * dialog for offers on any page. Returns a function that stops both.
 */
export function startTransfers(live) {
  const manager = transferManager(live);
  prepareDownloads();
  const off = manager.on((kind, t) => {
    if (kind === 'incoming') incomingDialog(manager, t);
  });
  return () => {
    off();
    manager.destroy();
  };
}

/** The modal asking whether to accept an offer: who, what, sizes; accept or decline. */
export function incomingDialog(manager, t) {
  const heading = h('h2', { id: 'tx-incoming-title', text: `${who(t.peer)} wants to send you files` });
  const list = h('ul', { class: 'tx-offer-files', 'data-testid': 'tx-offer-files' },
    t.files.slice(0, 50).map((f) => h('li', {}, h('span', { class: 'tx-name', text: f.name }),
      h('span', { class: 'muted small', text: bytesText(f.size) }))),
    t.files.length > 50 ? h('li', { class: 'muted', text: `and ${t.files.length - 50} more` }) : null);
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const folder = canPickFolder();
  const accept = h('button', { type: 'button', class: 'primary', 'data-testid': 'tx-accept',
    text: folder ? 'Accept and choose folder' : 'Accept' });
  const downloads = folder && h('button', { type: 'button', class: 'quiet', 'data-testid': 'tx-accept-downloads',
    text: 'Save to Downloads' });
  const decline = h('button', { type: 'button', class: 'quiet', 'data-testid': 'tx-decline', text: 'Decline' });
  const el = h('dialog', { class: 'dialog tx-dialog', 'aria-labelledby': heading.id, 'data-testid': 'tx-incoming',
    'data-id': t.id },
    heading,
    h('p', { class: 'lead', 'data-testid': 'tx-offer-summary', text: filesSummary(t.files, t.total) }),
    list,
    t.relayOnly ? h('p', { class: 'muted small' }, icon('lock'), ' Through Hearth\u2019s relay only: neither side sees the other\u2019s network address.') : null,
    error,
    h('div', { class: 'actions' }, decline, downloads, accept));
  let done = false;
  const close = () => {
    done = true;
    off();
    if (el.open) el.close();
    el.remove();
  };
  const off = manager.on((kind, x) => {
    if (x.id === t.id && kind === 'gone') close();
  });
  const take = async (pick) => {
    error.hidden = true;
    let sink;
    try {
      sink = await pick();
    } catch (err) {
      error.textContent = `Could not save there: ${err.message}`;
      error.hidden = false;
      return;
    }
    if (!sink || done) return;
    manager.accept(t.id, sink);
    close();
  };
  accept.addEventListener('click', () => take(folder ? pickFolderSink : downloadSink));
  downloads?.addEventListener('click', () => take(downloadSink));
  decline.addEventListener('click', () => {
    manager.decline(t.id);
    close();
  });
  el.addEventListener('cancel', (e) => e.preventDefault()); // answer with a button, not Escape
  document.body.append(el);
  el.showModal();
  accept.focus();
  return el;
}

/** A card that follows one transfer until it is dismissed. Returns { el, update() }. */
export function transferCard(manager, t) {
  const title = h('h3', { class: 'tx-title' });
  const state = h('p', { class: 'tx-state', 'data-testid': 'tx-state', role: 'status' });
  const bar = h('progress', { class: 'tx-bar', max: 1, value: 0, 'data-testid': 'tx-bar', 'aria-label': 'Total progress' });
  const numbers = h('p', { class: 'tx-numbers muted small', 'data-testid': 'tx-numbers' });
  const verify = h('p', { class: 'tx-verify small', 'data-testid': 'tx-verify', hidden: true });
  const files = h('ul', { class: 'tx-files' });
  const cancel = h('button', { type: 'button', class: 'quiet danger', 'data-testid': 'tx-cancel', text: 'Cancel',
    onclick: () => manager.cancel(t.id) });
  const dismiss = h('button', { type: 'button', class: 'quiet', 'data-testid': 'tx-dismiss', text: 'Close',
    onclick: () => manager.dismiss(t.id), hidden: true });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'tx-error', hidden: true });
  const el = h('article', { class: 'card tx-card', 'data-testid': 'tx-card', 'data-id': t.id, 'data-role': t.role },
    h('div', { class: 'tx-head' }, h('span', { class: 'tx-icon', 'aria-hidden': 'true' }, icon(t.role === 'send' ? 'send' : 'down')), title),
    state, bar, numbers, verify, error, files, h('div', { class: 'actions' }, dismiss, cancel));
  const rows = [];

  function fileRow(i) {
    const bar = h('progress', { class: 'tx-file-bar', max: 1, value: 0 });
    const mark = h('span', { class: 'tx-file-state small' });
    const row = h('li', { class: 'tx-file', 'data-testid': 'tx-file' },
      h('span', { class: 'tx-name' }), mark, bar);
    rows[i] = { row, bar, mark, name: row.firstChild };
    return row;
  }

  function update() {
    const over = ['done', 'failed', 'cancelled', 'declined'].includes(t.state);
    el.dataset.state = t.state;
    title.textContent = t.role === 'send'
      ? `To ${t.guest && !t.accepted ? 'a guest' : who(t.peer)}`
      : `From ${who(t.peer)}`;
    let words = STATE_WORDS[t.state] || t.state;
    if (t.state === 'done' && t.role === 'receive' && t.sinkLabel) words = `Done \u2014 saved to ${t.sinkLabel}`;
    state.textContent = words;
    const frac = t.total > 0 ? Math.min(1, t.bytes / t.total) : (t.state === 'done' ? 1 : 0);
    bar.value = frac;
    bar.setAttribute('aria-valuetext', `${Math.round(frac * 100)} percent`);
    const parts = [`${bytesText(t.bytes)} of ${bytesText(t.total)}`];
    if (t.state === 'sending' || t.state === 'receiving') {
      if (t.speed > 0) parts.push(`${bytesText(t.speed)}/s`);
      const eta = etaText(t.eta);
      if (eta) parts.push(eta);
    }
    numbers.textContent = parts.join(' \u00b7 ');
    verify.hidden = !t.verification;
    if (t.verification) {
      verify.replaceChildren('Check code ', h('strong', { class: 'mono', 'data-testid': 'tx-verify-code', text: t.verification }),
        h('span', { class: 'muted', text: ' \u2014 the other screen shows the same' }));
    }
    error.hidden = !(t.error && (over || t.state === 'interrupted') && t.state !== 'done');
    error.textContent = t.error || '';
    cancel.hidden = over;
    dismiss.hidden = !over;
    // Files: from the send state or the receive state, each with its own bar.
    const list = t.files || [];
    const show = list.slice(0, 100);
    if (files.children.length !== show.length) files.replaceChildren(...show.map((_, i) => fileRow(i)));
    const result = t.sendState?.result || t.recvState?.result || [];
    const done = t.sendState?.acked || t.recvState?.written || [];
    show.forEach((f, i) => {
      const r = rows[i];
      r.name.textContent = (t.recvState?.saved?.[i]) || f.name;
      r.bar.value = f.size > 0 ? Math.min(1, (done[i] || 0) / f.size) : (result[i] ? 1 : 0);
      const res = result[i];
      r.row.dataset.result = res || '';
      r.mark.textContent = res === 'ok' ? 'Verified' : res === 'bad' ? 'Check failed \u2014 discarded' : res === 'skipped' ? 'Already there'
        : bytesText(f.size);
    });
  }
  update();
  // Progress can come a thousand times a second: draw at most once a frame.
  let queued = false;
  const later = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      update();
    });
  };
  return { el, update: later };
}
