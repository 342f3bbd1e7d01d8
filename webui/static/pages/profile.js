// /app/profile: display name and password.

import { api } from '../api.js';
import { checkPassword, errorLine, field, h, Invalid, onSubmit, show, statusLine, value } from '../ui.js';

export function render(view, ctx) {
  document.title = 'Profile · Hearth';
  const user = ctx.user;
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Profile' }),
    h('p', { class: 'muted', 'data-testid': 'profile-who' },
      'You sign in as ', h('strong', { text: user.name }),
      user.role === 'admin' ? ' and look after this Hearth as an administrator.' : '.'),
    nameCard(ctx),
    passwordCard());
}

function nameCard(ctx) {
  const error = errorLine('profile-name-error');
  const done = statusLine('profile-name-status');
  const form = h('form', { id: 'profile-name-form', novalidate: true },
    field({ label: 'Display name', id: 'profile-display-name', name: 'display_name', required: true,
      autocomplete: 'name', value: ctx.user.display_name, maxlength: 64 }),
    error, done,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'profile-name-save', text: 'Save' }));
  onSubmit(form, error, async () => {
    show(done, '');
    const displayName = value(form, 'display_name');
    if (!displayName) throw new Invalid('Enter the name the household should see.', form.elements.namedItem('display_name'));
    const res = await api('PATCH', '/me', { body: { display_name: displayName } });
    ctx.updateUser(res.user);
    show(done, 'Saved.');
  });
  return h('section', { class: 'card', 'aria-labelledby': 'profile-name-title' },
    h('h2', { id: 'profile-name-title', text: 'How others see you' }), form);
}

function passwordCard() {
  const error = errorLine('password-error');
  const done = statusLine('password-status');
  const form = h('form', { id: 'password-form', novalidate: true },
    field({ label: 'Current password', id: 'password-current', name: 'current', type: 'password',
      required: true, autocomplete: 'current-password' }),
    field({ label: 'New password', id: 'password-new', name: 'new', type: 'password',
      required: true, minlength: 8, autocomplete: 'new-password', hint: 'At least 8 characters.' }),
    field({ label: 'Confirm new password', id: 'password-confirm', name: 'confirm', type: 'password',
      required: true, autocomplete: 'new-password' }),
    error, done,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'password-save', text: 'Change password' }));
  onSubmit(form, error, async () => {
    show(done, '');
    const current = value(form, 'current');
    if (!current) throw new Invalid('Enter your current password.', form.elements.namedItem('current'));
    checkPassword(form, 'new', 'confirm');
    await api('POST', '/me/password', { body: { current, new: value(form, 'new') } });
    form.reset();
    show(done, 'Password changed. Your other devices have been signed out.');
  });
  return h('section', { class: 'card', 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title', text: 'Password' }), form);
}
