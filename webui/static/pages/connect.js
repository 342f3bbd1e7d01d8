// /app/connect: every address Hearth can be reached at (its LAN name, LAN addresses, its
// tailnet name), each with a QR code for a phone's camera and whether this browser reaches
// it over a connection it trusts.

import { api, ApiError } from '../api.js';
import { errorLine, h, show } from '../ui.js';

const CHECK_MS = 4000;

const KIND_WORDS = {
  public: 'Public name',
  mdns: 'Home network name',
  lan: 'Home network address',
  tailnet: 'Tailnet name',
  tailnet_ip: 'Tailnet address',
};

const TRUST_WORDS = {
  local_ca: 'Certified by this Hearth\u2019s own authority: each device trusts it once.',
  public: 'Certified by a public authority: every browser trusts it.',
  none: 'Plain HTTP: the microphone and notifications need HTTPS.',
};

export async function render(view) {
  document.title = 'Connect a device · Hearth';
  const error = errorLine('connect-error');
  const list = h('ul', { class: 'connect-list', 'data-testid': 'address-list', 'aria-busy': 'true' });
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Connect a device' }),
    h('p', { class: 'muted', text: 'Open Hearth on another phone or computer at one of these addresses, ' +
      'or point its camera at a code.' }),
    error,
    list);
  let data;
  try {
    data = await api('GET', '/addresses');
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    show(error, err.message);
    return;
  }
  list.removeAttribute('aria-busy');
  if (!data.addresses.length) {
    list.replaceWith(h('p', { class: 'lead', 'data-testid': 'no-addresses',
      text: 'Hearth found no address to offer. Connect it to the home network, or run `hearth doctor` on it.' }));
    return;
  }
  const rows = data.addresses.map((a) => addressRow(a));
  list.replaceChildren(...rows.map((r) => r.el));
  if (data.addresses.some((a) => a.trust === 'local_ca')) {
    view.append(h('section', { class: 'card connect-help', 'aria-labelledby': 'trust-help' },
      h('h2', { id: 'trust-help', text: 'When a browser warns about the certificate' }),
      h('p', { text: 'Hearth makes its own certificates, so each device must trust Hearth once. ' +
        'Open the address\u2019s \u201cTrust this Hearth\u201d page (plain HTTP, on the same network) ' +
        'and follow the steps for the device: it downloads Hearth\u2019s certificate authority and ' +
        'shows how to install it. Then the address works without warnings.' })));
  }
  await Promise.all(rows.map((r) => r.check()));
}

function addressRow(a) {
  const here = new URL(a.url).origin === location.origin;
  const status = h('p', { class: 'connect-status', 'data-testid': 'address-status', 'data-state': 'checking',
    role: 'status', text: here ? 'You are using this address.' : 'Checking\u2026' });
  const qr = h('img', { class: 'qr', src: '/api/v1/qr?data=' + encodeURIComponent(a.url), width: 132, height: 132,
    alt: 'QR code for ' + a.url, loading: 'lazy' });
  const el = h('li', { class: 'card connect-item', 'data-testid': 'address', 'data-kind': a.kind, 'data-url': a.url },
    h('div', { class: 'connect-main' },
      h('p', { class: 'connect-kind muted small', text: (KIND_WORDS[a.kind] || a.kind) + (a.note ? ' \u00b7 ' + a.note : '') }),
      h('p', { class: 'connect-url' }, h('a', { href: a.url, rel: 'noopener', text: a.url })),
      status,
      h('p', { class: 'muted small', text: TRUST_WORDS[a.trust] || '' }),
      a.trust_url && h('p', { class: 'small' },
        h('a', { href: a.trust_url, rel: 'noopener', 'data-testid': 'trust-link', text: 'Trust this Hearth on a device' }))),
    qr);

  async function check() {
    if (here) {
      status.dataset.state = 'trusted';
      return;
    }
    const ok = await reachable(a.url);
    status.dataset.state = ok ? 'trusted' : 'unreachable';
    if (ok) {
      status.textContent = a.url.startsWith('https:')
        ? 'Works in this browser, with a trusted certificate.'
        : 'Works in this browser (without HTTPS).';
    } else {
      status.textContent = a.trust === 'local_ca'
        ? 'Not reachable from this browser, or it does not trust Hearth\u2019s certificate yet.'
        : 'Not reachable from this browser.';
    }
  }
  return { el, check };
}

/** Whether this browser completes a request to origin's /healthz (TLS trusted, if HTTPS). */
async function reachable(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), CHECK_MS);
  try {
    const res = await fetch(new URL('/healthz', url), { mode: 'cors', cache: 'no-store', credentials: 'omit',
      signal: ctl.signal });
    return res.ok;
  } catch {
    return false; // refused, unreachable, blocked as mixed content, or an untrusted certificate
  } finally {
    clearTimeout(timer);
  }
}
