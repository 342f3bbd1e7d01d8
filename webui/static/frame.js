// The signed-in app frame: header with search, notifications bell, user menu and connection
// dot, navigation, content, and an offline banner. It owns the realtime connection and the
// chat model for as long as someone is signed in.

import { api } from './api.js';
import { createChat } from './chat/store.js';
import { countText } from './chat/format.js';
import { createLive } from './live.js';
import { h, icon } from './ui.js';

const NAV = [
  { id: 'chat', label: 'Chat' },
  { id: 'voice', label: 'Voice' },
  { id: 'send', label: 'Send files', short: 'Send' },
  { id: 'profile', label: 'Profile' },
  { id: 'devices', label: 'Devices' },
  { id: 'connect', label: 'Connect a device', wideOnly: true }, // phones: from the user menu
  { id: 'admin', label: 'Admin', adminOnly: true },
];

const LIVE_WORDS = { connecting: 'Connecting\u2026', online: 'Connected', offline: 'Offline' };
const HEADER_LINKS = [
  { id: 'search', label: 'Search messages' },
  { id: 'notifications', label: 'Notifications', icon: 'bell' },
];

/**
 * Builds the frame for ctx.user. Returns { el, main, live, chat, select(section), setUser(user),
 * destroy() }. ctx.signOut() is called from the user menu.
 */
export function createFrame(ctx) {
  const links = new Map();
  const navBadge = h('span', { class: 'nav-badge', 'data-testid': 'nav-chat-badge', hidden: true });
  const bellCount = h('span', { class: 'head-count', 'data-testid': 'bell-count', hidden: true });
  const headerLinks = new Map(HEADER_LINKS.map((item) => {
    const a = h('a', { href: '/app/' + item.id, class: 'head-link', 'data-testid': 'head-' + item.id,
      'aria-label': item.label, title: item.label }, icon(item.icon || item.id));
    if (item.id === 'notifications') a.append(bellCount);
    return [item.id, a];
  }));
  const banner = h('p', { class: 'offline-banner', role: 'status', 'data-testid': 'offline-banner', hidden: true });
  let wasOnline = false;
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('ul', {}, NAV.filter((item) => !item.adminOnly || ctx.user.role === 'admin').map((item) => {
      const label = item.short
        ? [h('span', { class: 'label-long', text: item.label }), h('span', { class: 'label-short', text: item.short })]
        : h('span', { text: item.label });
      const link = h('a', { href: '/app/' + item.id, 'data-testid': 'nav-' + item.id }, icon(item.id), label);
      if (item.id === 'chat') link.append(navBadge);
      links.set(item.id, link);
      return h('li', { class: item.wideOnly ? 'nav-wide-only' : null }, link);
    })));


  const live = h('span', { class: 'live', 'data-testid': 'live', 'data-state': 'connecting' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'sr-only' }));
  const setLive = (state) => {
    live.dataset.state = state;
    live.title = LIVE_WORDS[state];
    live.lastChild.textContent = LIVE_WORDS[state];
    if (state === 'online') wasOnline = true;
    const show = state === 'offline' || (state === 'connecting' && wasOnline);
    banner.hidden = !show;
    banner.textContent = show ? 'Offline \u2014 reconnecting\u2026' : '';
  };

  const menu = userMenu(ctx);
  const main = h('main', { class: 'content', id: 'main', tabindex: '-1' });
  const el = h('div', { class: 'frame' },
    h('a', { class: 'skip', href: '#main', text: 'Skip to content' }),
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '/app/chat' }, icon('flame'), 'Hearth'),
      live,
      ...headerLinks.values(),
      menu.el),
    banner,
    nav,
    main);
  // The skip link moves focus without changing the route.
  el.firstChild.addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });

  const realtime = createLive({ onState: setLive, check: () => api('GET', '/me') });
  const chat = createChat({ user: ctx.user, live: realtime });

  // The tab's title starts with the count, "(2) #general · Hearth", whatever page set it.
  const titleCount = () => {
    const n = chat.mentionTotal();
    const base = document.title.replace(/^\(\d+\+?\) /, '');
    const want = n > 0 ? `(${countText(n)}) ${base}` : base;
    if (document.title !== want) document.title = want;
  };
  const titleWatch = new MutationObserver(titleCount);
  titleWatch.observe(document.querySelector('title'), { childList: true, characterData: true, subtree: true });

  const drawCounts = () => {
    titleCount();
    const n = chat.mentionTotal();
    for (const badge of [bellCount, navBadge]) {
      badge.hidden = n === 0;
      badge.textContent = countText(n);
    }
    const words = n === 0 ? 'Notifications' : `Notifications, ${n} unread`;
    headerLinks.get('notifications').setAttribute('aria-label', words);
    headerLinks.get('notifications').title = words;
    navBadge.setAttribute('aria-label', n === 1 ? '1 mention' : `${n} mentions`);
  };
  const offs = [
    chat.on('channels', drawCounts),
    chat.on('notification', (n) => alertInBackground(chat, n, ctx)),
  ];
  chat.start().catch((err) => {
    // A lost session is handled by api.js (back to sign-in); the chat page shows other failures.
    if (err?.status !== 401) console.warn('chat did not load', err);
  });

  return {
    el,
    main,
    live: realtime,
    chat,
    select(section) {
      for (const [id, link] of [...links, ...headerLinks]) {
        if (id === section) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
      main.dataset.section = section;
    },
    setUser: menu.setUser,
    destroy() {
      for (const off of offs) off();
      titleWatch.disconnect();
      document.title = document.title.replace(/^\(\d+\+?\) /, '');
      realtime.stop();
      chat.destroy();
      menu.destroy();
    },
  };
}

/** A system notification for a mention or direct message while the tab is in the background. */
function alertInBackground(chat, n, ctx) {
  if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
  const ch = chat.channels.get(n.channel);
  const who = chat.userName(n.author);
  const title = n.kind === 'dm' ? `${who} sent you a message` : `${who} mentioned you in ${chat.channelTitle(ch) || 'a channel'}`;
  try {
    const note = new Notification(title, { body: n.text || '', tag: `hearth-${n.channel}-${n.seq}`, icon: '/icon-192.png' });
    note.onclick = () => {
      window.focus();
      ctx.navigate(`/app/chat/${encodeURIComponent(n.channel)}/${n.seq}`);
      note.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker: the badge still shows.
  }
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

function userMenu(ctx) {
  const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
  const label = h('span', { class: 'menu-name', 'data-testid': 'user-display-name' });
  const button = h('button', { type: 'button', class: 'menu-button', id: 'user-menu-button',
    'aria-expanded': 'false', 'aria-controls': 'user-menu' }, avatar, label);
  const who = h('p', { class: 'menu-who' });
  const list = h('div', { class: 'menu-list', id: 'user-menu', hidden: true },
    who,
    h('a', { href: '/app/profile', class: 'menu-item', text: 'Profile' }),
    h('a', { href: '/app/devices', class: 'menu-item', text: 'Devices' }),
    h('a', { href: '/app/connect', class: 'menu-item', 'data-testid': 'menu-connect', text: 'Connect a device' }),
    h('button', { type: 'button', class: 'menu-item', 'data-testid': 'sign-out', onclick: () => ctx.signOut() },
      icon('signout'), 'Sign out'));
  const el = h('div', { class: 'menu' }, button, list);

  const setOpen = (open) => {
    list.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  };
  button.addEventListener('click', () => setOpen(list.hidden));
  list.addEventListener('click', (event) => {
    if (event.target.closest('.menu-item')) setOpen(false);
  });
  const onKey = (event) => {
    if (event.key === 'Escape' && !list.hidden) {
      setOpen(false);
      button.focus();
    }
  };
  const onOutside = (event) => {
    if (!el.contains(event.target)) setOpen(false);
  };
  document.addEventListener('keydown', onKey);
  document.addEventListener('click', onOutside);

  const setUser = (user) => {
    avatar.textContent = initials(user.display_name || user.name);
    label.textContent = user.display_name || user.name;
    button.setAttribute('aria-label', `Account menu for ${user.display_name || user.name}`);
    who.replaceChildren(
      h('strong', { text: user.display_name || user.name }),
      h('span', { class: 'muted', text: '@' + user.name + (user.role === 'admin' ? ' · admin' : '') }));
  };
  setUser(ctx.user);
  return {
    el,
    setUser,
    destroy() {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('click', onOutside);
    },
  };
}
