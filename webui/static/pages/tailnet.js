// The tailnet part of /app/admin: the node's state, and which tailnet logins sign in as which
// account without a password (sign-in by tailnet identity).

import { api, ApiError } from '../api.js';
import { cell, errorLine, h, Invalid, onSubmit, selectField, show, statusLine, table, timeEl, value } from '../ui.js';

const STATE_WORDS = {
  stopped: 'Stopped',
  starting: 'Connecting\u2026',
  needs_login: 'Needs a login',
  needs_approval: 'Waiting for the tailnet admin\u2019s approval',
  running: 'On the tailnet',
  failed: 'Stopped with an error',
};

export function tailnetSection() {
  const error = errorLine('tailnet-error');
  const done = statusLine('tailnet-status-line');
  const state = h('div', { class: 'tailnet-state', 'data-testid': 'tailnet-state', text: 'Loading\u2026' });
  const holder = h('div', { class: 'table-holder' });
  const form = h('form', { class: 'inline-form', 'data-testid': 'tailnet-map-form', novalidate: true, hidden: true });
  const el = h('section', { class: 'card', 'aria-labelledby': 'tailnet-title', 'data-testid': 'tailnet-section' },
    h('h2', { id: 'tailnet-title', text: 'Tailnet' }),
    h('p', { class: 'muted', text: 'Members on the household\u2019s tailnet open Hearth at its tailnet name. ' +
      'Link a tailnet login to an account and that person signs in without a password from their devices in the tailnet.' }),
    state, holder, form, error, done);

  async function reload() {
    let data;
    try {
      data = await api('GET', '/admin/tailnet/logins');
      if (data.enabled === false) throw new ApiError(404, 'no_tailnet', 'Hearth is not on a tailnet.');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.code === 'no_tailnet') {
        state.textContent = 'Hearth is not on a tailnet. To reach it from anywhere, set tailnet = true and an auth key ' +
          '(tailnet_auth_key_file) in its configuration and restart it.';
        return;
      }
      show(error, err.message);
      return;
    }
    const { users } = await api('GET', '/admin/users');
    const names = new Map(users.map((u) => [u.id, u]));
    showState(state, data.status || {});
    holder.replaceChildren(data.logins.length
      ? table('tailnet-logins', ['Tailnet login', 'Account'], data.logins.map((l) => h('tr', {},
        cell('Tailnet login', l.login),
        cell('Account', names.get(l.user_id)?.display_name || l.user_name || l.user_id),
        cell('', h('button', { type: 'button', class: 'quiet', text: 'Unlink', 'aria-label': 'Unlink ' + l.login,
          onclick: () => unlink(l.login) })))))
      : h('p', { class: 'muted', text: 'No tailnet logins are linked yet.' }));
    const recent = (data.status?.recent_logins || []).map((p) => p.login);
    const listId = 'tailnet-recent';
    form.replaceChildren(
      h('div', { class: 'field' },
        h('label', { for: 'tailnet-login', text: 'Tailnet login' }),
        h('input', { id: 'tailnet-login', name: 'login', list: listId, autocapitalize: 'none', spellcheck: 'false',
          placeholder: 'alice@example.com', 'aria-describedby': 'tailnet-login-hint' }),
        h('datalist', { id: listId }, recent.map((l) => h('option', { value: l }))),
        h('p', { class: 'hint', id: 'tailnet-login-hint',
          text: recent.length ? 'Recently seen on the tailnet: ' + recent.join(', ') : 'As the tailnet admin console shows it.' })),
      selectField({ label: 'Account', id: 'tailnet-user', name: 'user',
        options: users.filter((u) => !u.disabled).map((u) => [u.id, `${u.display_name} (@${u.name})`]) }),
      h('button', { type: 'submit', class: 'primary', text: 'Link' }));
    form.hidden = false;
  }

  async function unlink(login) {
    show(error, '');
    try {
      await api('DELETE', '/admin/tailnet/logins/' + encodeURIComponent(login));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
      return;
    }
    show(done, `${login} is unlinked.`);
    await reload();
  }

  onSubmit(form, error, async () => {
    const login = value(form, 'login');
    if (!login) throw new Invalid('Enter the tailnet login to link.', form.elements.namedItem('login'));
    await api('PUT', '/admin/tailnet/logins/' + encodeURIComponent(login), { body: { user_id: value(form, 'user') } });
    show(done, `${login} now signs in without a password.`);
    await reload();
  });

  reload();
  return el;
}

function showState(el, st) {
  const words = STATE_WORDS[st.state] || st.state || 'Unknown';
  const parts = [h('p', { class: 'row-title' }, h('span', { class: 'badge' + (st.state === 'running' ? ' accent' : ''), text: words }),
    st.dns_name && h('span', { text: ' ' + st.dns_name }))];
  if (st.addrs?.length) parts.push(h('p', { class: 'muted small', text: st.addrs.join(', ') }));
  if (st.auth_url) {
    parts.push(h('p', {}, 'Open ', h('a', { href: st.auth_url, rel: 'noopener', target: '_blank', text: st.auth_url }),
      ' and log in as a member of the tailnet, or give Hearth an auth key.'));
  }
  if (st.last_error) parts.push(h('p', { class: 'form-error', 'data-testid': 'tailnet-error-text', text: st.last_error }));
  parts.push(h('p', { class: 'muted small' }, st.log_upload ? 'Log upload to Tailscale is on. ' : 'No logs leave the box. ',
    st.since ? h('span', {}, 'Since ', timeEl(st.since)) : null));
  el.replaceChildren(...parts);
}
