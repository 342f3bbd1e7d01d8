// /t/<code>: a guest without an account receives files someone shares by code or QR. The page
// pairs with the code (POST /api/v1/transfer/pair), opens a realtime connection limited to that
// transfer, shows who sends what, and receives through Hearth's relay only.

import { api } from '../api.js';
import { createLive } from '../live.js';
import { authPage, errorLine, field, h, icon, Invalid, onSubmit, show, value } from '../ui.js';
import { bytesText } from '../transfer/protocol.js';
import { transferManager } from '../transfer/session.js';
import { canPickFolder, downloadSink, pickFolderSink, prepareDownloads } from '../transfer/sinks.js';
import { filesSummary, transferCard } from '../transfer/view.js';

const CODE_RE = /^[0-9A-HJKMNP-TV-Z]{10}$/;

/** "abcde-fghij" → "ABCDEFGHIJ", with the look-alikes Crockford base-32 allows. */
function normalize(code) {
  return String(code || '').toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

export function render(view, ctx, params = {}) {
  document.title = 'Receive files · Hearth';
  const error = errorLine('guest-error');
  const start = normalize(params.code);
  const form = h('form', { id: 'guest-form', novalidate: true },
    field({ label: 'Pairing code', id: 'guest-code', name: 'code', autocomplete: 'off', autocapitalize: 'characters',
      spellcheck: 'false', value: start.length === 10 ? start.slice(0, 5) + '-' + start.slice(5) : params.code || '',
      placeholder: 'XXXXX-XXXXX', required: true, hint: 'The code on the sender\u2019s screen. It works once.' }),
    error,
    h('button', { type: 'submit', class: 'primary wide', 'data-testid': 'guest-pair', text: 'Continue' }));
  const body = h('div', { class: 'tx-guest-page' },
    h('p', { class: 'lead', text: 'Someone at this Hearth wants to share files with you. You need no account.' }),
    form,
    h('p', { class: 'muted small' }, icon('lock'),
      ' Files go through this Hearth\u2019s relay, so neither side sees the other\u2019s network address.'));
  view.append(authPage('Receive files', body));
  prepareDownloads();

  onSubmit(form, error, async () => {
    const code = normalize(value(form, 'code'));
    if (!CODE_RE.test(code)) throw new Invalid('Codes have 10 letters and digits, like ABCDE-12345.', form.elements.namedItem('code'));
    const res = await api('POST', '/transfer/pair', { body: { code }, public: true });
    paired(body, res);
  });
}

function paired(body, res) {
  const offer = res.transfer || {};
  const live = createLive({ check: async () => {} });
  const manager = transferManager(live, { guest: true });
  live.start(0);
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'guest-error', hidden: true });
  const from = offer.from?.name || 'Someone';
  const folder = canPickFolder();
  const accept = h('button', { type: 'button', class: 'primary', 'data-testid': 'tx-accept',
    text: folder ? 'Accept and choose folder' : 'Accept' });
  const downloads = folder && h('button', { type: 'button', class: 'quiet', 'data-testid': 'tx-accept-downloads', text: 'Save to Downloads' });
  const decline = h('button', { type: 'button', class: 'quiet', 'data-testid': 'tx-decline', text: 'Decline' });
  const files = Array.isArray(offer.files) ? offer.files : [];
  const question = h('div', { class: 'tx-guest-offer', 'data-testid': 'guest-offer' },
    h('h2', { text: `${from} wants to send you files` }),
    h('p', { class: 'lead', 'data-testid': 'tx-offer-summary', text: filesSummary(files, Number(offer.total) || 0) }),
    h('ul', { class: 'tx-offer-files' }, files.slice(0, 50).map((f) => h('li', {},
      h('span', { class: 'tx-name', text: f.name }), h('span', { class: 'muted small', text: bytesText(f.size) })))),
    error,
    h('div', { class: 'actions' }, decline, downloads, accept));
  body.replaceChildren(question);
  const t = manager.adopt({ ...offer, relay_only: true });

  const online = () => new Promise((resolve) => {
    if (live.state === 'online') return resolve();
    const off = live.on('hello', () => {
      off();
      resolve();
    });
    return undefined;
  });
  const take = async (pick) => {
    show(error, '');
    let sink;
    try {
      sink = await pick();
    } catch (err) {
      show(error, `Could not save there: ${err.message}`);
      return;
    }
    if (!sink) return;
    await online();
    manager.accept(t.id, sink);
    const card = transferCard(manager, t);
    card.el.querySelector('[data-testid=tx-dismiss]')?.remove(); // nothing else to show here
    const closing = h('p', { class: 'muted small', 'data-testid': 'guest-finished', hidden: true,
      text: 'Finished. You can close this page.' });
    card.el.append(closing);
    manager.on((kind, x) => {
      if (x.id !== t.id) return;
      card.update();
      // Finished: the guest's ticket is good for nothing else, so close the connection.
      if (['done', 'failed', 'cancelled', 'declined'].includes(x.state)) {
        closing.hidden = false;
        live.stop();
      }
    });
    body.replaceChildren(card.el);
  };
  accept.addEventListener('click', () => take(folder ? pickFolderSink : downloadSink));
  downloads?.addEventListener('click', () => take(downloadSink));
  decline.addEventListener('click', async () => {
    await online();
    manager.decline(t.id);
    body.replaceChildren(h('p', { class: 'lead', text: 'You declined. You can close this page.' }));
    setTimeout(() => live.stop(), 1000);
  });
  accept.focus();
}
