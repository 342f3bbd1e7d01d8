// /app/admin: people (add, reset password, disable), groups and invites. Administrators only.

import { api, ApiError } from '../api.js';
import {
  cell, checkAccount, checkPassword, errorLine, field, h, onSubmit, selectField, show, statusLine,
  table, timeEl, value,
} from '../ui.js';
import { groupsSection } from './groups.js';
import { invitesSection } from './invites.js';
import { relaySection } from './relay.js';
import { tailnetSection } from './tailnet.js';

const ROLE_WORDS = { admin: 'Admin', member: 'Member', guest: 'Guest' };

export function render(view, ctx) {
  document.title = 'Admin · Hearth';
  view.append(h('h1', { class: 'page-title', tabindex: '-1', text: 'Admin' }));
  if (ctx.user.role !== 'admin') {
    view.append(h('p', { class: 'lead', 'data-testid': 'admin-forbidden',
      text: 'Only administrators can see this page.' }));
    return;
  }
  const users = usersSection(ctx);
  const groups = groupsSection(ctx);
  view.append(users.el, addUserSection(ctx, users.reload), groups.el, invitesSection(), relaySection(), tailnetSection());
  users.reload();
  return { destroy: groups.destroy };
}

function usersSection(ctx) {
  const error = errorLine('users-error');
  const done = statusLine('users-status');
  const holder = h('div', { class: 'table-holder', 'aria-busy': 'true' });
  const dialog = resetDialog((message) => show(done, message));

  async function reload() {
    try {
      const { users } = await api('GET', '/admin/users');
      users.sort((a, b) => a.name.localeCompare(b.name));
      holder.replaceChildren(table('users-table', ['Name', 'Role', 'Status', 'Added'],
        users.map((u) => userRow(u, u.id === ctx.user.id))));
      holder.removeAttribute('aria-busy');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
    }
  }

  async function setDisabled(user, disabled) {
    show(error, '');
    show(done, '');
    try {
      await api('POST', `/admin/users/${encodeURIComponent(user.id)}/disable`, { body: { disabled } });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
      return;
    }
    show(done, `${user.display_name} is ${disabled ? 'disabled and signed out everywhere' : 'enabled again'}.`);
    await reload();
  }

  function userRow(user, isSelf) {
    const reset = h('button', { type: 'button', class: 'quiet', 'data-testid': 'user-reset',
      'aria-label': `Reset password for ${user.name}`, text: 'Reset password',
      onclick: () => dialog.open(user) });
    const toggle = !isSelf && h('button', { type: 'button', class: user.disabled ? 'quiet' : 'quiet danger',
      'data-testid': 'user-toggle', 'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.name}`,
      text: user.disabled ? 'Enable' : 'Disable', onclick: () => setDisabled(user, !user.disabled) });
    return h('tr', { 'data-testid': 'user-row', 'data-name': user.name },
      cell('Name', h('strong', { text: user.display_name }), h('span', { class: 'muted block', text: '@' + user.name }),
        isSelf && h('span', { class: 'badge', text: 'You' })),
      cell('Role', ROLE_WORDS[user.role] || user.role),
      cell('Status', h('span', { class: user.disabled ? 'badge danger' : 'badge ok', 'data-testid': 'user-status',
        text: user.disabled ? 'Disabled' : 'Active' })),
      cell('Added', timeEl(user.created)),
      cell('Actions', h('div', { class: 'row-actions' }, reset, toggle)));
  }

  const el = h('section', { class: 'card', 'aria-labelledby': 'users-title' },
    h('h2', { id: 'users-title', text: 'People' }), error, done, holder, dialog.el);
  return { el, reload };
}

function resetDialog(announce) {
  let user = null;
  const error = errorLine('reset-error');
  const who = h('p', { class: 'muted' });
  const title = h('h2', { id: 'reset-title', text: 'Reset password' });
  const form = h('form', { id: 'reset-form', novalidate: true },
    field({ label: 'New password', id: 'reset-password', name: 'password', type: 'password',
      required: true, minlength: 8, autocomplete: 'new-password', hint: 'At least 8 characters.' }),
    field({ label: 'Confirm new password', id: 'reset-confirm', name: 'confirm', type: 'password',
      required: true, autocomplete: 'new-password' }),
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => el.close() }),
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'reset-submit', text: 'Reset password' })));
  const el = h('dialog', { class: 'dialog', id: 'reset-dialog', 'aria-labelledby': 'reset-title' }, title, who, form);

  onSubmit(form, error, async () => {
    checkPassword(form, 'password', 'confirm');
    await api('POST', `/admin/users/${encodeURIComponent(user.id)}/password`,
      { body: { password: value(form, 'password') } });
    el.close();
    announce(`New password set for ${user.display_name}. Their devices were signed out.`);
  });

  return {
    el,
    open(target) {
      user = target;
      title.textContent = `Reset password for ${target.display_name}`;
      who.textContent = `@${target.name} will need the new password on every device.`;
      form.reset();
      show(error, '');
      el.showModal();
    },
  };
}

function addUserSection(ctx, reloadUsers) {
  const error = errorLine('add-user-error');
  const done = statusLine('add-user-status');
  const form = h('form', { id: 'add-user-form', class: 'grid-form', novalidate: true },
    field({ label: 'Name', id: 'add-user-name', name: 'name', required: true, autocomplete: 'off',
      autocapitalize: 'none', spellcheck: 'false', hint: 'Lowercase letters, digits, . _ -' }),
    field({ label: 'Display name', id: 'add-user-display-name', name: 'display_name', autocomplete: 'off' }),
    field({ label: 'Password', id: 'add-user-password', name: 'password', type: 'password',
      required: true, minlength: 8, autocomplete: 'new-password', hint: 'At least 8 characters.' }),
    selectField({ label: 'Role', id: 'add-user-role', name: 'role', value: 'member',
      options: [['member', 'Member'], ['admin', 'Admin']] }),
    h('div', { class: 'span-all' }, error, done,
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'add-user-submit', text: 'Add person' })));

  onSubmit(form, error, async () => {
    show(done, '');
    const name = checkAccount(form, { confirm: false });
    const { user } = await api('POST', '/admin/users', {
      body: { name, display_name: value(form, 'display_name') || name, password: value(form, 'password'),
        role: value(form, 'role') },
    });
    form.reset();
    show(done, `Added ${user.display_name}. Tell them their name and password.`);
    await reloadUsers();
    await ctx.chat?.refreshUsers();
  });

  return h('section', { class: 'card', 'aria-labelledby': 'add-user-title' },
    h('h2', { id: 'add-user-title', text: 'Add a person' }),
    h('p', { class: 'muted', text: 'Or create an invite below and let them pick their own name and password.' }),
    form);
}
