// Chat dialogs: confirm, new channel, new direct message, channel settings, and the
// people-and-groups picker they share. Each dialog lives in the page only while open.

import { errorLine, field, h, icon, Invalid, onSubmit, value } from '../ui.js';
import { avatar } from './format.js';

const CHANNEL_RE = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** Opens a modal dialog built by build(close) and resolves with what close() was given. */
function modal({ id, title, testid }, build) {
  return new Promise((resolve) => {
    let result;
    const heading = h('h2', { id: id + '-title', text: title });
    const el = h('dialog', { class: 'dialog', id, 'aria-labelledby': heading.id, 'data-testid': testid });
    const close = (value) => {
      result = value;
      el.close();
    };
    el.append(heading, ...[build(close)].flat());
    el.addEventListener('close', () => {
      el.remove();
      resolve(result);
    });
    document.body.append(el);
    el.showModal();
  });
}

/** Asks before something that cannot be undone; resolves true to go ahead. */
export function confirmDialog({ title, text, confirm, testid }) {
  const opener = document.activeElement;
  return modal({ id: 'confirm-dialog', title, testid }, (close) => {
    const yes = h('button', { type: 'button', class: 'primary danger-fill', 'data-testid': testid + '-yes', text: confirm,
      onclick: () => close(true) });
    queueMicrotask(() => yes.focus());
    return [h('p', { class: 'muted', text }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => close(false) }), yes)];
  }).then((ok) => {
    if (!ok && opener?.isConnected) opener.focus();
    return Boolean(ok);
  });
}

/**
 * A filterable list of checkboxes for people (and groups, with groups: true).
 * Returns { el, people(), groups() } with the chosen IDs.
 */
export function picker(chat, { people = [], groups = [], withGroups = false, exclude = [], id, label }) {
  const chosenPeople = new Set(people);
  const chosenGroups = new Set(groups);
  const filter = h('input', { type: 'search', id: id + '-filter', class: 'picker-filter', placeholder: 'Filter by name',
    autocomplete: 'off', 'aria-controls': id + '-options' });
  const options = h('div', { class: 'picker-options', id: id + '-options' });

  function option(kind, item) {
    const set = kind === 'group' ? chosenGroups : chosenPeople;
    const box = h('input', { type: 'checkbox', value: item.id, 'data-kind': kind, checked: set.has(item.id),
      id: `${id}-${kind}-${item.id}` });
    box.addEventListener('change', () => (box.checked ? set.add(item.id) : set.delete(item.id)));
    const words = kind === 'group'
      ? [h('span', { class: 'picker-icon', 'aria-hidden': 'true' }, icon('people')),
        h('span', { class: 'picker-name' }, h('strong', { text: '@' + item.name }),
          h('span', { class: 'muted small block', text: `${item.members.length} ${item.members.length === 1 ? 'person' : 'people'}` }))]
      : [avatar(item), h('span', { class: 'picker-name' }, h('strong', { text: item.display_name || item.name }),
        h('span', { class: 'muted small block', text: '@' + item.name }))];
    return h('label', { class: 'picker-option', for: box.id, 'data-testid': 'pick-' + kind,
      'data-name': item.name }, box, ...words);
  }

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const match = (...texts) => !q || texts.some((t) => String(t || '').toLowerCase().includes(q));
    const users = [...chat.users.values()]
      .filter((u) => !exclude.includes(u.id) && match(u.name, u.display_name))
      .sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    const gs = withGroups ? [...chat.groups.values()].filter((g) => match(g.name)).sort((a, b) => a.name.localeCompare(b.name)) : [];
    options.replaceChildren(...[
      gs.length ? h('p', { class: 'picker-heading', text: 'Groups' }) : null,
      ...gs.map((g) => option('group', g)),
      gs.length && users.length ? h('p', { class: 'picker-heading', text: 'People' }) : null,
      ...users.map((u) => option('user', u)),
      !users.length && !gs.length ? h('p', { class: 'muted small', text: 'Nobody matches.' }) : null,
    ].filter(Boolean));
  }
  filter.addEventListener('input', draw);
  draw();
  const el = h('fieldset', { class: 'picker' },
    h('legend', { text: label }),
    h('label', { class: 'sr-only', for: filter.id, text: 'Filter ' + label.toLowerCase() }),
    filter, options);
  return { el, people: () => [...chosenPeople], groups: () => [...chosenGroups] };
}

/** New channel: name, topic, public or private (with members and groups). Resolves with it. */
export function newChannelDialog(chat) {
  return modal({ id: 'new-channel-dialog', title: 'New channel', testid: 'new-channel-dialog' }, (close) => {
    const error = errorLine('new-channel-error');
    const pick = picker(chat, { withGroups: true, exclude: [chat.me.id], id: 'new-channel-members', label: 'Who can join' });
    pick.el.hidden = true;
    const kind = (v, title, hint, checked) => h('label', { class: 'choice', for: 'new-channel-' + v },
      h('input', { type: 'radio', name: 'kind', value: v, id: 'new-channel-' + v, checked }),
      h('span', {}, h('strong', { text: title }), h('span', { class: 'muted small block', text: hint })));
    const form = h('form', { id: 'new-channel-form', novalidate: true },
      field({ label: 'Name', id: 'new-channel-name', name: 'name', required: true, autocomplete: 'off',
        autocapitalize: 'none', spellcheck: 'false', maxlength: 40, hint: 'Lowercase letters, digits, - and _, like "holidays".' }),
      field({ label: 'Topic (optional)', id: 'new-channel-topic', name: 'topic', autocomplete: 'off', maxlength: 200 }),
      h('fieldset', { class: 'choices' }, h('legend', { text: 'Who can see it' }),
        kind('public', 'Everyone at home', 'Anyone in the household can read and join in.', true),
        kind('private', 'Only people I choose', 'Invisible to everyone else.', false)),
      pick.el,
      error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => close(null) }),
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'new-channel-submit', text: 'Create channel' })));
    form.addEventListener('change', (event) => {
      if (event.target.name === 'kind') pick.el.hidden = event.target.value !== 'private';
    });
    onSubmit(form, error, async () => {
      const nameInput = form.elements.namedItem('name');
      const name = nameInput.value.trim().toLowerCase().replace(/^#/, '');
      if (!CHANNEL_RE.test(name)) {
        throw new Invalid('Channel names use 1 to 40 lowercase letters, digits, dashes or underscores.', nameInput);
      }
      const isPrivate = form.elements.namedItem('kind').value === 'private';
      const ch = await chat.createChannel({
        name, topic: value(form, 'topic'), kind: isPrivate ? 'private' : 'public',
        members: isPrivate ? pick.people() : [], groups: isPrivate ? pick.groups() : [],
      });
      close(ch);
    });
    return form;
  });
}

/** New direct message: choose one or a few people. Resolves with the conversation. */
export function dmDialog(chat) {
  return modal({ id: 'dm-dialog', title: 'New message', testid: 'dm-dialog' }, (close) => {
    const error = errorLine('dm-error');
    const pick = picker(chat, { exclude: [chat.me.id], id: 'dm-people', label: 'To' });
    const form = h('form', { id: 'dm-form', novalidate: true },
      h('p', { class: 'muted', text: 'Choose one person, or a few for a small group conversation.' }),
      pick.el, error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => close(null) }),
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'dm-submit', text: 'Open conversation' })));
    onSubmit(form, error, async () => {
      const members = pick.people();
      if (!members.length) throw new Invalid('Choose at least one person.', form.querySelector('input[type=checkbox]'));
      close(await chat.openDM(members));
    });
    queueMicrotask(() => form.querySelector('input')?.focus());
    return form;
  });
}

/** Channel settings: name and topic; members and groups of a private channel. */
export function settingsDialog(chat, ch) {
  const title = chat.channelTitle(ch) + ' settings';
  return modal({ id: 'settings-dialog', title, testid: 'settings-dialog' }, (close) => {
    const error = errorLine('settings-error');
    const isPrivate = ch.kind === 'private';
    const pick = isPrivate && picker(chat, { people: ch.members || [], groups: ch.groups || [], withGroups: true,
      id: 'settings-members', label: 'Members' });
    const form = h('form', { id: 'settings-form', novalidate: true },
      h('p', { class: 'muted', text: isPrivate
        ? 'Private: only its members, and the members of its groups, can see it.'
        : 'Public: everyone in the household can read and post here.' }),
      field({ label: 'Name', id: 'settings-name', name: 'name', value: ch.name, required: true, autocomplete: 'off',
        autocapitalize: 'none', spellcheck: 'false', maxlength: 40 }),
      field({ label: 'Topic', id: 'settings-topic', name: 'topic', value: ch.topic || '', autocomplete: 'off', maxlength: 200 }),
      pick ? pick.el : null,
      error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => close(null) }),
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'settings-save', text: 'Save' })));
    onSubmit(form, error, async () => {
      const nameInput = form.elements.namedItem('name');
      const name = nameInput.value.trim().toLowerCase().replace(/^#/, '');
      if (!CHANNEL_RE.test(name)) {
        throw new Invalid('Channel names use 1 to 40 lowercase letters, digits, dashes or underscores.', nameInput);
      }
      const body = { name, topic: value(form, 'topic') };
      if (pick) {
        body.members = pick.people();
        body.groups = pick.groups();
        if (!body.members.length && !body.groups.length) {
          throw new Invalid('A private channel needs at least one member.', null);
        }
      }
      close(await chat.updateChannel(ch.id, body));
    });
    return form;
  });
}
