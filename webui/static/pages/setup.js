// /setup: the one-time creation of the first admin with the setup token.

import { api } from '../api.js';
import { authPage, checkAccount, errorLine, field, h, onSubmit, value } from '../ui.js';

export function render(root, ctx) {
  document.title = 'Set up · Hearth';
  const error = errorLine('setup-error');
  const form = h('form', { id: 'setup-form', novalidate: true },
    field({ label: 'Setup token', id: 'setup-token', name: 'token', required: true,
      autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' }),
    field({ label: 'Your name', id: 'setup-name', name: 'name', required: true,
      autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false',
      hint: 'Used to sign in: lowercase letters, digits, dots, dashes or underscores.' }),
    field({ label: 'Display name', id: 'setup-display-name', name: 'display_name',
      autocomplete: 'name', hint: 'What the household sees, for example "Alex".' }),
    field({ label: 'Password', id: 'setup-password', name: 'password', type: 'password',
      required: true, minlength: 8, autocomplete: 'new-password', hint: 'At least 8 characters.' }),
    field({ label: 'Confirm password', id: 'setup-confirm', name: 'confirm', type: 'password',
      required: true, autocomplete: 'new-password' }),
    error,
    h('button', { type: 'submit', class: 'primary wide', 'data-testid': 'setup-submit', text: 'Create admin account' }),
  );

  onSubmit(form, error, async () => {
    const name = checkAccount(form);
    const res = await api('POST', '/setup', {
      public: true,
      body: {
        token: value(form, 'token'),
        name,
        display_name: value(form, 'display_name') || name,
        password: value(form, 'password'),
      },
    });
    ctx.signedIn(res);
  });

  const hint = h('p', { class: 'lead' },
    'Welcome! This one-time step creates the first administrator. The setup token was printed in Hearth\u2019s log when it started; you can also show it on the appliance with ',
    h('code', { text: 'hearth admin setup-token' }), '.');
  root.replaceChildren(authPage('Set up Hearth', hint, form));
}
