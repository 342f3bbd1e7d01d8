// /app/notifications: mentions and direct messages, newest first, each a link to its message;
// and, on request, the browser's own alerts while Hearth is in the background.

import { ApiError } from '../api.js';
import { avatar } from '../chat/format.js';
import { errorLine, h, show, timeEl } from '../ui.js';

export function render(view, ctx) {
  document.title = 'Notifications \u00b7 Hearth';
  const chat = ctx.chat;
  const error = errorLine('notifications-error');
  const list = h('ul', { class: 'notes', 'data-testid': 'notification-list', 'aria-busy': 'true' });
  const alerts = h('section', { class: 'card alerts', 'aria-labelledby': 'alerts-title' });
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Notifications' }),
    alerts, error, list);

  function drawAlerts() {
    const supported = 'Notification' in window;
    const permission = supported ? Notification.permission : 'unsupported';
    const parts = [h('h2', { id: 'alerts-title', text: 'Alerts on this device' })];
    if (permission === 'default') {
      parts.push(h('p', { class: 'muted', text: 'Get a system alert when someone mentions you or sends you a message while Hearth is in the background.' }),
        h('button', { type: 'button', class: 'primary', 'data-testid': 'enable-alerts', text: 'Turn on alerts',
          onclick: async () => {
            await Notification.requestPermission();
            drawAlerts();
          } }));
    } else if (permission === 'granted') {
      parts.push(h('p', { class: 'muted', 'data-testid': 'alerts-on',
        text: 'Alerts are on. You\u2019ll get one for mentions and direct messages while Hearth is in the background.' }));
    } else if (permission === 'denied') {
      parts.push(h('p', { class: 'muted', text: 'Alerts are blocked for Hearth in this browser. You can allow them in the site settings.' }));
    } else {
      parts.push(h('p', { class: 'muted', text: 'This browser can\u2019t show alerts for Hearth here. The bell above still counts what\u2019s new.' }));
    }
    alerts.replaceChildren(...parts);
  }

  function draw() {
    const notes = chat.notifications || [];
    list.removeAttribute('aria-busy');
    if (!notes.length) {
      list.replaceChildren(h('li', { class: 'empty-note muted', 'data-testid': 'notifications-empty',
        text: 'Nothing yet. When someone mentions you or sends you a direct message, it shows up here.' }));
      return;
    }
    list.replaceChildren(...notes.map((n) => row(chat, n)));
  }

  const offs = [chat.on('notification', draw), chat.on('channels', draw), chat.on('users', draw)];
  drawAlerts();
  chat.ready.then(() => chat.loadNotifications()).then(() => {
    if (view.isConnected) draw();
  }, (err) => {
    if (!(err instanceof ApiError)) throw err;
    show(error, err.message);
  });
  return {
    destroy() {
      for (const off of offs) off();
    },
  };
}

function row(chat, n) {
  const ch = chat.channels.get(n.channel);
  const who = chat.userName(n.author);
  const what = n.kind === 'dm'
    ? [h('strong', { text: who }), ' sent you a message']
    : [h('strong', { text: who }), ' mentioned you in ', h('strong', { text: ch ? chat.channelTitle(ch) : 'a channel' })];
  return h('li', {},
    h('a', { class: 'note' + (n.read ? '' : ' unread'), href: `/app/chat/${encodeURIComponent(n.channel)}/${n.seq}`,
      'data-testid': 'notification', 'data-read': String(Boolean(n.read)) },
    avatar(chat.users.get(n.author), { presence: false }),
    h('span', { class: 'note-main' },
      h('span', { class: 'note-title' }, ...what),
      n.text ? h('span', { class: 'note-text', text: n.text }) : null,
      h('span', { class: 'note-time muted small' }, timeEl(n.created))),
    n.read ? null : h('span', { class: 'unread-dot' }, h('span', { class: 'sr-only', text: 'New' }))));
}
