// /login: sign in with name and password, or over the tailnet by tailnet identity.

import { api, ApiError } from '../api.js';
import { authPage, errorLine, field, h, Invalid, onSubmit, show, value } from '../ui.js';

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
  offerTailnet(form, error, ctx);
}

/** Over the tailnet, offers sign-in by the device's tailnet identity (no password). */
async function offerTailnet(form, error, ctx) {
  let who;
  try {
    who = await api('GET', '/auth/tailnet', { public: true });
  } catch (err) {
    if (err instanceof ApiError) return; // not over the tailnet: nothing to offer
    throw err;
  }
  const button = h('button', { type: 'button', class: 'primary wide', 'data-testid': 'tailnet-sign-in',
    text: 'Sign in with your tailnet identity' });
  const note = h('p', { class: 'muted small', text: who.mapped
    ? `As ${who.peer.login_name}, from ${who.peer.node_name}.`
    : `You are ${who.peer.login_name || who.peer.node_name} on the tailnet; an admin must link that login to your account first.` });
  button.addEventListener('click', async () => {
    show(error, '');
    button.disabled = true;
    try {
      ctx.signedIn(await api('POST', '/auth/tailnet', { public: true }));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
      button.disabled = false;
    }
  });
  form.before(h('div', { class: 'tailnet-sign-in' }, button, note, h('p', { class: 'divider muted small', text: 'or with a password' })));
}
