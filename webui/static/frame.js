// The signed-in app frame: header with user menu and connection dot, navigation, content.

import { api } from './api.js';
import { connectLive } from './live.js';
import { h, icon } from './ui.js';

const NAV = [
  { id: 'chat', label: 'Chat' },
  { id: 'voice', label: 'Voice' },
  { id: 'send', label: 'Send files', short: 'Send' },
  { id: 'profile', label: 'Profile' },
  { id: 'devices', label: 'Devices' },
  { id: 'admin', label: 'Admin', adminOnly: true },
];

const LIVE_WORDS = { connecting: 'Connecting\u2026', online: 'Connected', offline: 'Offline' };

/**
 * Builds the frame for ctx.user. Returns { el, main, select(section), setUser(user), destroy() }.
 * ctx.signOut() is called from the user menu.
 */
export function createFrame(ctx) {
  const links = new Map();
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('ul', {}, NAV.filter((item) => !item.adminOnly || ctx.user.role === 'admin').map((item) => {
      const label = item.short
        ? [h('span', { class: 'label-long', text: item.label }), h('span', { class: 'label-short', text: item.short })]
        : h('span', { text: item.label });
      const link = h('a', { href: '/app/' + item.id, 'data-testid': 'nav-' + item.id }, icon(item.id), label);
      links.set(item.id, link);
      return h('li', {}, link);
    })));

  const live = h('span', { class: 'live', 'data-testid': 'live', 'data-state': 'connecting' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'sr-only' }));
  const setLive = (state) => {
    live.dataset.state = state;
    live.title = LIVE_WORDS[state];
    live.lastChild.textContent = LIVE_WORDS[state];
  };

  const menu = userMenu(ctx);
  const main = h('main', { class: 'content', id: 'main', tabindex: '-1' });
  const el = h('div', { class: 'frame' },
    h('a', { class: 'skip', href: '#main', text: 'Skip to content' }),
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '/app/chat' }, icon('flame'), 'Hearth'),
      live,
      menu.el),
    nav,
    main);
  // The skip link moves focus without changing the route.
  el.firstChild.addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });

  const stopLive = connectLive(setLive, () => api('GET', '/me'));
  return {
    el,
    main,
    select(section) {
      for (const [id, link] of links) {
        if (id === section) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
    },
    setUser: menu.setUser,
    destroy() {
      stopLive();
      menu.destroy();
    },
  };
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
