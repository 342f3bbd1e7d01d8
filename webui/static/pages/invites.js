// The invites part of /app/admin: create a link (shown once, with QR code), list and revoke.

import { api, ApiError, qrURL } from '../api.js';
import {
  cell, errorLine, field, h, Invalid, onSubmit, selectField, show, statusLine, table, timeEl, value,
} from '../ui.js';

const STATUS_WORDS = { active: 'Active', expired: 'Expired', used_up: 'Used up', revoked: 'Revoked' };
const STATUS_CLASS = { active: 'badge ok', revoked: 'badge danger' };
const UNIT_SECONDS = { hours: 3600, days: 86400 };

export function invitesSection() {
  const error = errorLine('invites-error');
  const holder = h('div', { class: 'table-holder', 'aria-busy': 'true' });
  const result = createdLink();

  async function reload() {
    try {
      const { invites } = await api('GET', '/admin/invites');
      invites.sort((a, b) => String(b.created).localeCompare(String(a.created)));
      holder.replaceChildren(invites.length
        ? table('invites-table', ['Created', 'Role', 'Used', 'Expires', 'Status'], invites.map(inviteRow))
        : h('p', { class: 'muted', text: 'No invites yet.' }));
      holder.removeAttribute('aria-busy');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
    }
  }

  async function revoke(invite) {
    show(error, '');
    try {
      await api('DELETE', '/admin/invites/' + encodeURIComponent(invite.id));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(error, err.message);
      return;
    }
    await reload();
  }

  function inviteRow(invite) {
    const status = h('span', { class: STATUS_CLASS[invite.status] || 'badge', 'data-testid': 'invite-status',
      text: STATUS_WORDS[invite.status] || invite.status });
    const revokeButton = invite.status === 'active' && h('button', { type: 'button', class: 'quiet danger',
      'data-testid': 'invite-revoke', text: 'Revoke', onclick: () => revoke(invite) });
    return h('tr', { 'data-testid': 'invite-row', 'data-id': invite.id },
      cell('Created', timeEl(invite.created)),
      cell('Role', invite.role === 'admin' ? 'Admin' : invite.role === 'guest' ? 'Guest' : 'Member'),
      cell('Used', `${invite.used} of ${invite.uses}`),
      cell('Expires', timeEl(invite.expires)),
      cell('Status', status),
      cell('Actions', h('div', { class: 'row-actions' }, revokeButton)));
  }

  const form = createForm(async (created) => {
    result.show(location.origin + '/join/' + created.token);
    await reload();
  });
  reload();
  return h('section', { class: 'card', 'aria-labelledby': 'invites-title' },
    h('h2', { id: 'invites-title', text: 'Invites' }),
    h('p', { class: 'muted', text: 'An invite link lets someone create their own account. Send it by message or let them scan the QR code.' }),
    form, result.el,
    h('h3', { text: 'All invites' }), error, holder);
}

function createForm(onCreated) {
  const error = errorLine('invite-error');
  const form = h('form', { id: 'invite-form', class: 'grid-form', novalidate: true },
    field({ label: 'Number of people', id: 'invite-uses', name: 'uses', type: 'number', min: 1, max: 100,
      value: 1, required: true, inputmode: 'numeric' }),
    h('div', { class: 'field-pair' },
      field({ label: 'Valid for', id: 'invite-ttl', name: 'ttl', type: 'number', min: 1, max: 365,
        value: 7, required: true, inputmode: 'numeric' }),
      selectField({ label: 'Unit', id: 'invite-unit', name: 'unit', value: 'days',
        options: [['hours', 'hours'], ['days', 'days']] })),
    selectField({ label: 'Joins as', id: 'invite-role', name: 'role', value: 'member',
      options: [['member', 'Member'], ['admin', 'Admin']] }),
    h('div', { class: 'span-all' }, error,
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'invite-create', text: 'Create invite link' })));

  onSubmit(form, error, async () => {
    const uses = Number(value(form, 'uses'));
    const ttl = Number(value(form, 'ttl'));
    if (!Number.isInteger(uses) || uses < 1 || uses > 100) {
      throw new Invalid('Choose how many people can use the link: 1 to 100.', form.elements.namedItem('uses'));
    }
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 365) {
      throw new Invalid('Choose for how long the link works: a whole number from 1 to 365.', form.elements.namedItem('ttl'));
    }
    const created = await api('POST', '/admin/invites', {
      body: { uses, ttl_seconds: ttl * UNIT_SECONDS[value(form, 'unit')], role: value(form, 'role') },
    });
    await onCreated(created);
  });
  return form;
}

function createdLink() {
  const link = h('p', { class: 'invite-link mono', id: 'invite-link', 'data-testid': 'invite-link' });
  const copied = statusLine('invite-copied');
  const qr = h('img', { class: 'qr', 'data-testid': 'invite-qr', alt: 'QR code of the invite link',
    width: 192, height: 192 });
  const copy = h('button', { type: 'button', class: 'primary', 'data-testid': 'invite-copy',
    'aria-describedby': 'invite-link', text: 'Copy link' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(link.textContent);
      show(copied, 'Copied. Paste it into a message to the person you\u2019re inviting.');
    } catch {
      // No clipboard access (plain HTTP on the LAN, say): select the link for the person instead.
      getSelection().selectAllChildren(link);
      show(copied, 'The link is selected: copy it with Ctrl+C, or long-press on a phone.');
    }
  });
  const el = h('div', { class: 'invite-result', id: 'invite-result', hidden: true },
    h('div', { class: 'invite-text' },
      h('h3', { text: 'Your new invite link' }),
      h('p', { class: 'muted', text: 'Copy it now: it is shown only this once.' }),
      link, copy, copied),
    h('figure', { class: 'qr-figure' }, qr, h('figcaption', { class: 'muted small', text: 'Scan to open the link' })));
  return {
    el,
    show(url) {
      link.textContent = url;
      qr.src = qrURL(url);
      show(copied, '');
      el.hidden = false;
      copy.focus();
    },
  };
}
