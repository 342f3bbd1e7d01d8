// The groups part of /app/admin: named sets of people ("kids", "parents") that can be
// mentioned as @name and given access to private channels.

import { ApiError } from '../api.js';
import { picker } from '../chat/dialogs.js';
import { cell, errorLine, field, h, Invalid, onSubmit, show, statusLine, table, value } from '../ui.js';

const GROUP_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export function groupsSection(ctx) {
  const chat = ctx.chat;
  const error = errorLine('groups-error');
  const done = statusLine('groups-status');
  const holder = h('div', { class: 'table-holder', 'aria-busy': 'true' });
  const formHolder = h('div', {});
  let editing = null;

  function draw() {
    const groups = [...chat.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
    holder.removeAttribute('aria-busy');
    holder.replaceChildren(groups.length
      ? table('groups-table', ['Name', 'Members'], groups.map((g) => h('tr', { 'data-testid': 'group-row', 'data-name': g.name },
        cell('Name', h('strong', { text: '@' + g.name })),
        cell('Members', g.members.length
          ? g.members.map((id) => chat.userName(id)).sort().join(', ')
          : h('span', { class: 'muted', text: 'Nobody yet' })),
        cell('Actions', h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'quiet', 'data-testid': 'group-edit', 'aria-label': `Edit @${g.name}`,
            text: 'Edit', onclick: () => openForm(g) }))))))
      : h('p', { class: 'muted', text: 'No groups yet.' }));
  }

  function openForm(group) {
    editing = group;
    const formError = errorLine('group-form-error');
    const pick = picker(chat, { people: group?.members || [], id: 'group-members', label: 'Members' });
    const form = h('form', { id: 'group-form', novalidate: true },
      h('h3', { id: 'group-form-title', text: group ? `Edit @${group.name}` : 'New group' }),
      field({ label: 'Name', id: 'group-name', name: 'name', required: true, autocomplete: 'off', autocapitalize: 'none',
        spellcheck: 'false', maxlength: 32, value: group?.name || '',
        hint: 'People mention the group as @name. Lowercase letters, digits, - and _.' }),
      pick.el, formError,
      h('div', { class: 'actions' },
        group ? h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => openForm(null) }) : null,
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'group-save', text: group ? 'Save group' : 'Add group' })));
    onSubmit(form, formError, async () => {
      show(done, '');
      const nameInput = form.elements.namedItem('name');
      const name = value(form, 'name').toLowerCase().replace(/^@/, '');
      if (!GROUP_RE.test(name)) throw new Invalid('Group names use 1 to 32 lowercase letters, digits, dashes or underscores.', nameInput);
      const saved = await chat.saveGroup(editing?.id, { name, members: pick.people() });
      show(done, editing ? `Saved @${saved.name}.` : `Added @${saved.name}.`);
      openForm(null);
    });
    formHolder.replaceChildren(form);
    if (group) form.querySelector('input').focus();
  }

  const off = chat.on('groups', draw);
  chat.ready.then(() => {
    draw();
    openForm(null);
  }, (err) => {
    if (!(err instanceof ApiError)) throw err;
    show(error, err.message);
  });
  const el = h('section', { class: 'card', 'aria-labelledby': 'groups-title', 'data-testid': 'groups-section' },
    h('h2', { id: 'groups-title', text: 'Groups' }),
    h('p', { class: 'muted', text: 'Groups can be mentioned all at once (@kids) and let their members into private channels.' }),
    error, done, holder, formHolder);
  return { el, destroy: off };
}
