// /app/devices: where this account is signed in, with a sign-out button for each.

import { api, ApiError } from '../api.js';
import { errorLine, h, show, timeEl } from '../ui.js';

export async function render(view, ctx) {
  document.title = 'Devices · Hearth';
  const error = errorLine('devices-error');
  const list = h('ul', { class: 'rows', 'data-testid': 'device-list', 'aria-busy': 'true' });
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Devices' }),
    h('p', { class: 'muted', text: 'Browsers and apps signed in to your account. Sign out any you don\u2019t recognise.' }),
    error,
    list);

  async function load() {
    const { sessions } = await api('GET', '/sessions');
    sessions.sort((a, b) => Number(b.current) - Number(a.current) || String(b.last_seen).localeCompare(String(a.last_seen)));
    list.replaceChildren(...sessions.map((s) => row(s, signOut)));
    list.removeAttribute('aria-busy');
  }

  async function signOut(session, button) {
    show(error, '');
    button.disabled = true;
    try {
      await api('DELETE', '/sessions/' + encodeURIComponent(session.id));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      button.disabled = false;
      show(error, err.message);
      return;
    }
    if (session.current) ctx.signedOut();
    else await load();
  }

  try {
    await load();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    show(error, err.message);
  }
}

function row(session, signOut) {
  const name = session.device || (session.kind === 'token' ? 'Access token' : 'Unknown device');
  const title = h('p', { class: 'row-title' }, h('span', { text: name }),
    session.current && h('span', { class: 'badge accent', 'data-testid': 'this-device', text: 'This device' }),
    session.kind === 'token' && h('span', { class: 'badge', text: 'Access token' }));
  const meta = h('p', { class: 'row-meta muted' },
    session.address ? h('span', { text: session.address }) : null,
    h('span', {}, 'Last seen ', timeEl(session.last_seen)),
    h('span', {}, 'Signed in ', timeEl(session.created)));
  const button = h('button', { type: 'button', class: 'quiet', 'data-testid': 'device-sign-out',
    'aria-label': session.current ? 'Sign out this device' : `Sign out ${name}`, text: 'Sign out' });
  button.addEventListener('click', () => signOut(session, button));
  return h('li', { class: 'row', 'data-testid': 'device', 'data-current': String(Boolean(session.current)) },
    h('div', { class: 'row-main' }, title, meta), h('div', { class: 'row-actions' }, button));
}
