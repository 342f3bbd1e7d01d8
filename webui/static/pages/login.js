// /login: sign in with name and password.

import { api } from '../api.js';
import { authPage, errorLine, field, h, Invalid, onSubmit, value } from '../ui.js';

export function render(root, ctx) {
  document.title = 'Sign in · Hearth';
  const error = errorLine('login-error');
  const form = h('form', { id: 'login-form', novalidate: true },
    field({ label: 'Name', id: 'login-name', name: 'name', required: true,
      autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' }),
    field({ label: 'Password', id: 'login-password', name: 'password', type: 'password',
      required: true, autocomplete: 'current-password' }),
    error,
    h('button', { type: 'submit', class: 'primary wide', 'data-testid': 'login-submit', text: 'Sign in' }),
  );

  onSubmit(form, error, async () => {
    const name = value(form, 'name').toLowerCase();
    const password = value(form, 'password');
    if (!name || !password) throw new Invalid('Enter your name and password.', form.elements.namedItem(name ? 'password' : 'name'));
    ctx.signedIn(await api('POST', '/auth/login', { public: true, body: { name, password } }));
  });

  root.replaceChildren(authPage('Sign in', form,
    h('p', { class: 'muted small', text: 'New here? Ask someone in your household for an invite link.' })));
}
