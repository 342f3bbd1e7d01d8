// Bootstrap and router: decides which page a path shows and keeps the signed-in state.

import { api, ApiError, setCsrf, setUnauthorizedHandler } from './api.js';
import { createFrame } from './frame.js';
import { authPage, h } from './ui.js';
import * as admin from './pages/admin.js';
import * as chat from './pages/chat.js';
import * as connect from './pages/connect.js';
import * as devices from './pages/devices.js';
import * as join from './pages/join.js';
import * as login from './pages/login.js';
import * as notifications from './pages/notifications.js';
import * as profile from './pages/profile.js';
import * as search from './pages/search.js';
import * as send from './pages/send.js';
import * as guest from './pages/guest.js';
import { startTransfers } from './transfer/view.js';
import * as setup from './pages/setup.js';
import * as voice from './pages/voice.js';

const SECTIONS = { chat, search, notifications, voice, send, profile, devices, connect, admin };

const root = document.getElementById('root');
const state = { setupRequired: false, user: null };
let frame = null;
let stopTransfers = null; // the frame's file transfers (incoming offers on any page)
let current = null; // { section, instance } of the page shown in the frame

/** What every page may use. */
const ctx = {
  get user() {
    return state.user;
  },
  /** The chat model (channels, messages, unread counts) while the app frame is up. */
  get chat() {
    return frame?.chat;
  },
  /** The realtime connection while the app frame is up. */
  get live() {
    return frame?.live;
  },
  navigate,
  /** After setup, sign-in or joining: { user, csrf } from the server. */
  signedIn({ user, csrf }) {
    setCsrf(csrf);
    state.user = user;
    state.setupRequired = false;
    navigate('/app');
  },
  updateUser(user) {
    state.user = user;
    frame?.setUser(user);
  },
  async signOut() {
    try {
      await api('POST', '/auth/logout', { public: true });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // Already signed out or unreachable: forget the session here all the same.
    }
    ctx.signedOut();
  },
  signedOut() {
    setCsrf(null);
    state.user = null;
    navigate('/login', { replace: true });
  },
};

function navigate(path, { replace = false } = {}) {
  if (path !== location.pathname) history[replace ? 'replaceState' : 'pushState'](null, '', path);
  route();
}

/** Where a path goes given the state: { redirect } or { page, params } or { section, rest }. */
function resolve(path) {
  if (state.setupRequired) return path === '/setup' ? { page: setup } : { redirect: '/setup' };
  const home = state.user ? '/app' : '/login';
  if (path === '/' || path === '/setup') return { redirect: home };
  if (path === '/login') return state.user ? { redirect: home } : { page: login };
  const invite = path.match(/^\/join\/([^/]+)\/?$/);
  if (invite) return { page: join, params: { token: decodeURIComponent(invite[1]) } };
  const pairing = path.match(/^\/t\/([^/]*)\/?$/);
  if (pairing) return { page: guest, params: { code: pairing[1] } };
  if (!path.startsWith('/app')) return { redirect: home };
  if (!state.user) return { redirect: '/login' };
  const parts = path.replace(/^\/app\/?/, '').replace(/\/$/, '').split('/');
  if (!parts[0]) return { section: 'chat', rest: [], landing: true }; // /app opens #general
  try {
    const [section, ...rest] = parts.map(decodeURIComponent);
    return { section, rest };
  } catch {
    return { section: '?', rest: [] }; // malformed escapes: not found
  }
}

function isOurPath(path) {
  return path === '/' || path === '/setup' || path === '/login' || path.startsWith('/join/') || path.startsWith('/t/') ||
    path === '/app' || path.startsWith('/app/');
}

function route() {
  const target = resolve(location.pathname);
  if (target.redirect) {
    history.replaceState(null, '', target.redirect);
    route();
    return;
  }
  if (target.section) {
    showSection(target);
    return;
  }
  leavePage();
  stopTransfers?.();
  stopTransfers = null;
  frame?.destroy();
  frame = null;
  const view = h('div', { class: 'view' });
  root.replaceChildren(view);
  Promise.resolve(target.page.render(view, ctx, target.params)).then(() => {
    if (view.isConnected) view.querySelector('input:not([type=hidden]), h1')?.focus();
  });
}

function showSection({ section, rest, landing = false }) {
  if (!frame) {
    frame = createFrame(ctx);
    stopTransfers = startTransfers(frame.live);
    root.replaceChildren(frame.el);
  }
  frame.select(section);
  // Pages that can follow a new path themselves (chat switching channels) keep their state.
  if (current?.section === section && current.instance?.update) {
    current.instance.update(rest, { landing });
    return;
  }
  leavePage();
  const view = h('div', { class: 'view' });
  frame.main.replaceChildren(view);
  const page = SECTIONS[section];
  const result = page ? page.render(view, ctx, section, rest, { landing }) : notFound(view);
  const instance = result && typeof result.then !== 'function' ? result : null;
  current = { section, instance };
  if (!instance?.ownsFocus) view.querySelector('h1')?.focus();
}

function leavePage() {
  current?.instance?.destroy?.();
  current = null;
}

function notFound(view) {
  document.title = 'Not found · Hearth';
  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Nothing here' }),
    h('p', { class: 'muted' }, 'This page does not exist. ', h('a', { href: '/app/chat', text: 'Go to Chat' }), '.'));
}

// Same-origin links to our pages change the route without reloading.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
      event.shiftKey || event.altKey || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !isOurPath(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname);
});
window.addEventListener('popstate', route);
setUnauthorizedHandler(() => ctx.signedOut());

async function boot() {
  try {
    const status = await api('GET', '/status', { public: true });
    state.setupRequired = Boolean(status.setup_required);
    if (!state.setupRequired) {
      const me = await api('GET', '/me', { public: true }).catch((err) => {
        if (err instanceof ApiError && err.status === 401) return null;
        throw err;
      });
      if (me) {
        setCsrf(me.csrf);
        state.user = me.user;
      }
    }
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    root.replaceChildren(authPage('Hearth can\u2019t be reached',
      h('p', { class: 'lead', role: 'alert', 'data-testid': 'boot-error', text: err.message }),
      h('button', { type: 'button', class: 'primary wide', text: 'Try again', onclick: () => location.reload() })));
    return;
  }
  route();
}

boot();
