// /join/{token}: check an invite, then create an account with it.

import { api, ApiError } from '../api.js';
import { authPage, checkAccount, errorLine, field, formatTime, h, onSubmit, value } from '../ui.js';

export async function render(root, ctx, { token }) {
  document.title = 'Join · Hearth';
  const path = '/invites/' + encodeURIComponent(token);
  root.replaceChildren(authPage('Join Hearth', h('p', { class: 'lead', role: 'status', text: 'Checking your invite\u2026' })));

  let invite;
  try {
    invite = await api('GET', path, { public: true });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    root.replaceChildren(authPage('This invite can\u2019t be used',
      h('p', { class: 'lead', role: 'alert', 'data-testid': 'join-invalid', text: err.message }),
      h('p', { class: 'muted', text: 'Ask the person who invited you for a new link.' }),
      h('a', { href: '/login', class: 'button wide', text: 'Go to sign in' })));
    return;
  }

  const error = errorLine('join-error');
  const form = h('form', { id: 'join-form', novalidate: true },
    field({ label: 'Your name', id: 'join-name', name: 'name', required: true,
      autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false',
      hint: 'Used to sign in: lowercase letters, digits, dots, dashes or underscores.' }),
    field({ label: 'Display name', id: 'join-display-name', name: 'display_name',
      autocomplete: 'name', hint: 'What the household sees, for example "Sam".' }),
    field({ label: 'Password', id: 'join-password', name: 'password', type: 'password',
      required: true, minlength: 8, autocomplete: 'new-password', hint: 'At least 8 characters.' }),
    field({ label: 'Confirm password', id: 'join-confirm', name: 'confirm', type: 'password',
      required: true, autocomplete: 'new-password' }),
    error,
    h('button', { type: 'submit', class: 'primary wide', 'data-testid': 'join-submit', text: 'Join Hearth' }),
  );

  onSubmit(form, error, async () => {
    const name = checkAccount(form);
    const res = await api('POST', path + '/accept', {
      public: true,
      body: { name, display_name: value(form, 'display_name') || name, password: value(form, 'password') },
    });
    ctx.signedIn(res);
  });

  const role = invite.role === 'admin' ? 'an administrator' : invite.role === 'guest' ? 'a guest' : 'a member';
  const intro = h('p', { class: 'lead' },
    `You\u2019ve been invited to this home\u2019s Hearth as ${role}. Choose a name and password for yourself.`);
  const expiry = h('p', { class: 'muted small', text: 'This invite is valid until ' + formatTime(invite.expires) + '.' });
  const signedInNote = ctx.user && h('p', { class: 'note', 'data-testid': 'join-signed-in',
    text: `You are signed in as ${ctx.user.display_name}. Joining signs this device in as the new account.` });
  root.replaceChildren(authPage('Join Hearth', intro, expiry, signedInNote, form));
}
