// The chat model of one signed-in tab: people, groups, channels with unread counts, the
// loaded part of each channel's history, typing, and the outbox of messages not yet sent.
// It follows the realtime connection and applies every event idempotently (a message is
// channel + seq). Views subscribe with on(name, fn): 'channels', 'users', 'groups',
// 'messages' ({channel}), 'typing' ({channel}), 'outbox' ({channel}), 'notification' (n),
// 'removed' ({channel}), 'reset'.

import { api, ApiError } from '../api.js';

const PAGE = 50;
const TYPING_MS = 4000;
const TYPING_EVERY = 3000;
const RETRY_MAX = 30000;

/** A random idempotency key (randomUUID needs a secure context; plain-HTTP LANs are not). */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function createChat({ user, live }) {
  const me = user;
  const users = new Map();
  const groups = new Map();
  const channels = new Map();
  const histories = new Map(); // channel → { messages, bySeq, older, newer, loaded }
  const typing = new Map(); // channel → Map(user → timer)
  const typingSent = new Map(); // channel → time
  const seenNotifications = new Set();
  const readPending = new Map(); // channel → seq not yet stored by the server
  const listeners = new Map();
  const outboxKey = 'hearth.outbox.' + me.id;
  let outbox = loadOutbox();
  let notifications = null; // loaded by the notifications view
  let loading = null; // the current load: events wait for it
  let buffered = null;
  let refreshTimer = 0;
  let flushing = false;
  let retryTimer = 0;
  let retryDelay = 1000;
  const offs = [];

  function emit(name, detail) {
    for (const fn of listeners.get(name) || []) fn(detail);
  }

  // ---- People, groups, channels ----

  function userName(id) {
    const u = users.get(id);
    return u ? u.display_name || u.name : 'Someone';
  }

  function channelTitle(ch) {
    if (!ch) return '';
    if (ch.kind !== 'dm') return '#' + ch.name;
    const others = (ch.members || []).filter((id) => id !== me.id);
    if (others.length === 0) return userName(me.id) + ' (you)';
    return others.map(userName).join(', ');
  }

  function setChannel(view) {
    const old = channels.get(view.id);
    const ch = { read_seq: 0, unread: 0, mentions: 0, ...old, ...view };
    channels.set(ch.id, ch);
    return ch;
  }

  /** Merges a fresh snapshot with what live events already told us. */
  function mergeSnapshot(list) {
    const ids = new Set();
    for (const view of list) {
      ids.add(view.id);
      const old = channels.get(view.id);
      if (old && old.last_seq > view.last_seq) {
        view.unread = Math.min(100, view.unread + (old.last_seq - Math.max(view.last_seq, view.read_seq)));
        view.last_seq = old.last_seq;
        view.last_at = old.last_at;
      }
      if (old && old.read_seq > view.read_seq) {
        view.read_seq = old.read_seq;
        if (view.read_seq >= view.last_seq) view.unread = view.mentions = 0;
      }
      channels.set(view.id, view);
    }
    for (const id of [...channels.keys()]) {
      if (!ids.has(id)) {
        channels.delete(id);
        histories.delete(id);
      }
    }
  }

  async function loadAll() {
    const [dir, grp, list] = await Promise.all([api('GET', '/users'), api('GET', '/groups'), api('GET', '/channels')]);
    users.clear();
    for (const u of dir.users) users.set(u.id, u);
    groups.clear();
    for (const g of grp.groups) groups.set(g.id, g);
    mergeSnapshot(list.channels);
    return list.last_id || 0;
  }

  let started = null;
  /** First load (once): fills the model, then opens the live connection from the snapshot's event id. */
  function start() {
    started = started || firstLoad();
    return started;
  }

  async function firstLoad() {
    let wait = 1000;
    for (;;) {
      try {
        const lastId = await loadAll();
        emit('users');
        emit('groups');
        emit('channels');
        live.start(lastId);
        flush();
        return;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status === 401) throw err;
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, RETRY_MAX);
      }
    }
  }

  /** Reloads everything (after a resync): live events wait meanwhile, then apply on top. */
  async function resync() {
    if (loading) return;
    buffered = [];
    loading = (async () => {
      for (let wait = 1000; ; wait = Math.min(wait * 2, RETRY_MAX)) {
        try {
          return await loadAll();
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 401) throw err;
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    })();
    let snapshotId = 0;
    try {
      snapshotId = await loading;
    } finally {
      loading = null;
    }
    histories.clear();
    const held = buffered;
    buffered = null;
    for (const [type, data, env] of held) if (env.id > snapshotId) handle(type, data, env);
    emit('users');
    emit('groups');
    emit('channels');
    emit('reset');
  }

  /** Asks for fresh counts soon (after changes we cannot count exactly here). */
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const list = await api('GET', '/channels');
        mergeSnapshot(list.channels);
        emit('channels');
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      }
    }, 800);
  }

  // ---- History ----

  function history(channelId) {
    let h = histories.get(channelId);
    if (!h) {
      h = { messages: [], bySeq: new Map(), older: false, newer: false, loaded: false, loadingOlder: false };
      histories.set(channelId, h);
    }
    return h;
  }

  /** Puts m into the loaded history (keeping seq order); returns whether it is shown there. */
  function upsert(m) {
    const h = histories.get(m.channel);
    if (!h || !h.loaded) return false;
    const list = h.messages;
    if (h.bySeq.has(m.seq)) {
      const i = list.findIndex((x) => x.seq === m.seq);
      list[i] = m;
      h.bySeq.set(m.seq, m);
      return true;
    }
    const newest = list.length ? list[list.length - 1].seq : 0;
    if (m.seq > newest) {
      if (h.newer) return false; // a gap before it: it is loaded when the reader gets there
      list.push(m);
    } else {
      const oldest = list.length ? list[0].seq : 0;
      if (m.seq < oldest && h.older) return false;
      let i = list.length;
      while (i > 0 && list[i - 1].seq > m.seq) i--;
      list.splice(i, 0, m);
    }
    h.bySeq.set(m.seq, m);
    return true;
  }

  function fill(h, messages, { older, newer, replace = false }) {
    if (replace) {
      h.messages = [];
      h.bySeq.clear();
    }
    for (const m of messages) {
      if (h.bySeq.has(m.seq)) continue;
      h.bySeq.set(m.seq, m);
      h.messages.push(m);
    }
    h.messages.sort((a, b) => a.seq - b.seq);
    if (older !== undefined) h.older = older;
    if (newer !== undefined) h.newer = newer;
    h.loaded = true;
  }

  function path(channelId, rest = '') {
    return '/channels/' + encodeURIComponent(channelId) + rest;
  }

  /** Loads the newest page of a channel (again) unless it is loaded and current. */
  async function openChannel(channelId) {
    const h = history(channelId);
    if (h.loaded && !h.newer) return h;
    const page = await api('GET', path(channelId, '/messages?limit=' + PAGE));
    fill(h, page.messages, { older: page.more, newer: false, replace: true });
    emit('messages', { channel: channelId });
    return h;
  }

  async function loadOlder(channelId) {
    const h = history(channelId);
    if (!h.loaded || !h.older || h.loadingOlder) return false;
    h.loadingOlder = true;
    try {
      const oldest = h.messages.length ? h.messages[0].seq : 0;
      const page = await api('GET', path(channelId, `/messages?before=${oldest}&limit=${PAGE}`));
      fill(h, page.messages, { older: page.more });
    } finally {
      h.loadingOlder = false;
    }
    emit('messages', { channel: channelId, older: true });
    return true;
  }

  async function loadNewer(channelId) {
    const h = history(channelId);
    if (!h.loaded || !h.newer || h.loadingNewer) return false;
    h.loadingNewer = true;
    try {
      const newest = h.messages.length ? h.messages[h.messages.length - 1].seq : 0;
      const page = await api('GET', path(channelId, `/messages?after=${newest}&limit=${PAGE}`));
      fill(h, page.messages, { newer: page.more });
    } finally {
      h.loadingNewer = false;
    }
    emit('messages', { channel: channelId });
    return true;
  }

  /** Makes sure message seq is loaded (loading the messages around it if needed). */
  async function loadAround(channelId, seq) {
    const h = history(channelId);
    if (h.loaded && h.bySeq.has(seq)) return h;
    const half = Math.floor(PAGE / 2);
    const page = await api('GET', path(channelId, `/messages?before=${seq + half + 1}&limit=${PAGE}`));
    const newest = page.messages.length ? page.messages[page.messages.length - 1].seq : 0;
    const ch = channels.get(channelId);
    fill(h, page.messages, { older: page.more, newer: newest < (ch?.last_seq || 0), replace: true });
    emit('messages', { channel: channelId });
    return h;
  }

  // ---- Sending, with the outbox ----

  function loadOutbox() {
    try {
      const items = JSON.parse(localStorage.getItem(outboxKey) || '[]');
      return Array.isArray(items) ? items.filter((i) => i && i.key && i.channel) : [];
    } catch {
      return [];
    }
  }

  function saveOutbox() {
    try {
      if (outbox.length) localStorage.setItem(outboxKey, JSON.stringify(outbox));
      else localStorage.removeItem(outboxKey);
    } catch {
      // Storage full or blocked: the queue still lives in this tab.
    }
  }

  function dropFromOutbox(key) {
    const item = outbox.find((i) => i.key === key);
    if (!item) return;
    outbox = outbox.filter((i) => i !== item);
    saveOutbox();
    emit('outbox', { channel: item.channel });
  }

  /** Queues a message and sends it as soon as possible (retrying with the same key). */
  function send(channelId, { text, replyTo = 0, attachments = [] }) {
    const item = {
      key: newKey(), channel: channelId, text, reply_to: replyTo || 0,
      attachments: attachments.map((a) => a.id), files: attachments.map((a) => ({ name: a.name, size: a.size })),
      created: new Date().toISOString(), state: 'sending', error: '',
    };
    outbox.push(item);
    saveOutbox();
    emit('outbox', { channel: channelId });
    flush();
    return item;
  }

  function retrySoon() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX);
  }

  async function flush() {
    if (flushing || !navigator.onLine) return;
    flushing = true;
    try {
      for (;;) {
        const item = outbox.find((i) => i.state === 'sending');
        if (!item) break;
        let res;
        try {
          res = await api('POST', path(item.channel, '/messages'), {
            body: { text: item.text, reply_to: item.reply_to || undefined, attachments: item.attachments, key: item.key },
          });
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (err.status === 0 || err.status === 429 || err.status >= 500) {
            retrySoon(); // not reachable now: same key next time, so never twice
            return;
          }
          if (err.status === 401) return;
          item.state = 'failed';
          item.error = err.message;
          saveOutbox();
          emit('outbox', { channel: item.channel });
          continue;
        }
        retryDelay = 1000;
        applyMessage(res.message);
        dropFromOutbox(item.key);
      }
    } finally {
      flushing = false;
    }
  }

  // ---- Applying events ----

  function clearTyping(channelId, userId) {
    const t = typing.get(channelId);
    if (!t || !t.has(userId)) return;
    clearTimeout(t.get(userId));
    t.delete(userId);
    emit('typing', { channel: channelId });
  }

  function applyMessage(m) {
    const ch = channels.get(m.channel);
    if (!ch) refreshSoon(); // a conversation we have not heard of yet (a new DM, say)
    if (ch && m.seq > (ch.last_seq || 0)) {
      ch.last_seq = m.seq;
      ch.last_at = m.created;
      if (m.author !== me.id && m.seq > ch.read_seq && !m.deleted) ch.unread = Math.min(100, ch.unread + 1);
      emit('channels');
    }
    if (m.author === me.id && m.key && outbox.some((i) => i.key === m.key)) dropFromOutbox(m.key);
    clearTyping(m.channel, m.author);
    if (upsert(m)) emit('messages', { channel: m.channel, seq: m.seq, isNew: true });
  }

  function applyChange(m) {
    if (upsert(m)) emit('messages', { channel: m.channel, seq: m.seq });
  }

  function handle(type, data, env) {
    if (buffered) {
      buffered.push([type, data, env]);
      return;
    }
    switch (type) {
      case 'message.new':
        applyMessage(data);
        break;
      case 'message.delete': {
        const ch = channels.get(data.channel);
        if (ch && data.author !== me.id && data.seq > ch.read_seq) refreshSoon(); // it no longer counts as unread
        applyChange(data);
        break;
      }
      case 'message.edit':
      case 'message.reaction':
        applyChange(data);
        break;
      case 'channel.new':
      case 'channel.update': {
        const isNew = !channels.has(data.id);
        setChannel(data);
        if (isNew) refreshSoon(); // its unread count comes from the server
        emit('channels');
        break;
      }
      case 'channel.removed':
        channels.delete(data.channel);
        histories.delete(data.channel);
        emit('channels');
        emit('removed', { channel: data.channel });
        break;
      case 'read': {
        const ch = channels.get(data.channel);
        if (!ch || data.seq <= ch.read_seq) break;
        ch.read_seq = data.seq;
        if (data.seq >= ch.last_seq) {
          ch.unread = 0;
          ch.mentions = 0;
        } else refreshSoon();
        if (notifications) for (const n of notifications) if (n.channel === ch.id && n.seq <= data.seq) n.read = true;
        emit('channels');
        break;
      }
      case 'notification': {
        if (seenNotifications.has(data.id)) break;
        seenNotifications.add(data.id);
        const ch = channels.get(data.channel);
        if (ch && data.seq > ch.read_seq) ch.mentions += 1;
        else if (!ch) refreshSoon();
        if (notifications && !notifications.some((n) => n.id === data.id)) notifications.unshift(data);
        emit('channels');
        emit('notification', data);
        break;
      }
      case 'group.update':
        groups.set(data.id, data);
        emit('groups');
        break;
      case 'typing': {
        if (data.user_id === me.id || !channels.has(data.channel)) break;
        let t = typing.get(data.channel);
        if (!t) typing.set(data.channel, (t = new Map()));
        clearTimeout(t.get(data.user_id));
        t.set(data.user_id, setTimeout(() => clearTyping(data.channel, data.user_id), TYPING_MS));
        emit('typing', { channel: data.channel });
        break;
      }
      case 'presence': {
        const u = users.get(data.user_id);
        if (u) {
          u.presence = data.state;
          emit('users');
        } else refreshUsers();
        break;
      }
      default:
    }
  }

  async function refreshUsers() {
    try {
      const dir = await api('GET', '/users');
      for (const u of dir.users) users.set(u.id, u);
      emit('users');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
  }

  for (const type of ['message.new', 'message.edit', 'message.delete', 'message.reaction', 'channel.new',
    'channel.update', 'channel.removed', 'read', 'notification', 'group.update', 'typing', 'presence']) {
    offs.push(live.on(type, (data, env) => handle(type, data, env)));
  }
  offs.push(live.on('resync', () => resync()));
  offs.push(live.on('hello', () => {
    retryDelay = 1000;
    flush();
    for (const [channelId, seq] of readPending) postRead(channelId, seq);
    refreshUsers(); // presence may have changed while we were away
  }));
  const onOnline = () => flush();
  window.addEventListener('online', onOnline);

  async function postRead(channelId, seq) {
    readPending.set(channelId, seq);
    try {
      await api('POST', path(channelId, '/read'), { body: { seq } });
      if (readPending.get(channelId) === seq) readPending.delete(channelId);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status !== 0 && err.status < 500) readPending.delete(channelId);
    }
  }

  return {
    me,
    users,
    groups,
    channels,
    drafts: new Map(), // channel → text not sent yet
    lastOpen: '', // the channel shown last (desktop /app/chat returns to it)
    start,
    /** Resolves once the first load is done. */
    get ready() {
      return start();
    },
    userName,
    channelTitle,
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
      return () => listeners.get(name)?.delete(fn);
    },

    /** Channels of a kind group: 'text' (public and private), 'dm', 'voice'. */
    list(kind) {
      const all = [...channels.values()];
      if (kind === 'voice') return all.filter((c) => c.voice).sort((a, b) => a.name.localeCompare(b.name));
      if (kind === 'dm') {
        return all.filter((c) => c.kind === 'dm')
          .sort((a, b) => String(b.last_at || b.created).localeCompare(String(a.last_at || a.created)));
      }
      return all.filter((c) => c.kind !== 'dm' && !c.voice).sort((a, b) => a.name.localeCompare(b.name));
    },
    /** The channel people land on: #general, or the first text channel. */
    landing() {
      const text = this.list('text');
      return text.find((c) => c.name === 'general') || text[0] || null;
    },
    mentionTotal() {
      let n = 0;
      for (const c of channels.values()) n += c.mentions || 0;
      return n;
    },
    typingIn(channelId) {
      return [...(typing.get(channelId)?.keys() || [])];
    },
    refreshUsers,
    history,
    openChannel,
    loadOlder,
    loadNewer,
    loadAround,

    pending(channelId) {
      return outbox.filter((i) => i.channel === channelId);
    },
    send,
    retry(key) {
      const item = outbox.find((i) => i.key === key);
      if (!item) return;
      item.state = 'sending';
      item.error = '';
      saveOutbox();
      emit('outbox', { channel: item.channel });
      retryDelay = 1000;
      flush();
    },
    discard: dropFromOutbox,

    async edit(channelId, seq, text) {
      const res = await api('PATCH', path(channelId, '/messages/' + seq), { body: { text } });
      applyChange(res.message);
    },
    async remove(channelId, seq) {
      await api('DELETE', path(channelId, '/messages/' + seq));
      const h = histories.get(channelId);
      const m = h?.bySeq.get(seq);
      if (m) applyChange({ ...m, deleted: true, text: '', spans: [], attachments: undefined, reactions: undefined });
    },
    async react(channelId, seq, emoji, on) {
      const res = await api(on ? 'PUT' : 'DELETE',
        path(channelId, `/messages/${seq}/reactions/${encodeURIComponent(emoji)}`));
      applyChange(res.message);
    },
    /** Marks a channel read up to seq (the caller debounces). */
    markRead(channelId, seq) {
      const ch = channels.get(channelId);
      if (!ch || seq <= ch.read_seq) return;
      ch.read_seq = seq;
      if (seq >= ch.last_seq) {
        ch.unread = 0;
        ch.mentions = 0;
      }
      if (notifications) for (const n of notifications) if (n.channel === channelId && n.seq <= seq) n.read = true;
      emit('channels');
      postRead(channelId, seq);
    },
    /** Tells the others we are typing here (at most every few seconds). */
    typing(channelId) {
      const now = Date.now();
      if (now - (typingSent.get(channelId) || 0) < TYPING_EVERY) return;
      if (live.send('typing', { channel: channelId })) typingSent.set(channelId, now);
    },
    stoppedTyping(channelId) {
      typingSent.delete(channelId);
    },

    async createChannel(body) {
      const res = await api('POST', '/channels', { body });
      const ch = setChannel(res.channel);
      emit('channels');
      return ch;
    },
    async updateChannel(channelId, body) {
      const res = await api('PATCH', path(channelId), { body });
      const ch = setChannel(res.channel);
      emit('channels');
      return ch;
    },
    async openDM(members) {
      const res = await api('POST', '/dms', { body: { members } });
      const isNew = !channels.has(res.channel.id);
      const ch = setChannel(res.channel);
      if (isNew) refreshSoon();
      emit('channels');
      return ch;
    },
    async saveGroup(id, body) {
      const res = await api(id ? 'PUT' : 'POST', id ? '/admin/groups/' + encodeURIComponent(id) : '/admin/groups', { body });
      groups.set(res.group.id, res.group);
      emit('groups');
      return res.group;
    },

    /** The notifications list (loaded from the server each time the view opens). */
    async loadNotifications() {
      const res = await api('GET', '/notifications');
      notifications = res.notifications;
      for (const n of notifications) seenNotifications.add(n.id);
      return notifications;
    },
    get notifications() {
      return notifications;
    },

    destroy() {
      for (const off of offs) off();
      window.removeEventListener('online', onOnline);
      clearTimeout(refreshTimer);
      clearTimeout(retryTimer);
      for (const t of typing.values()) for (const timer of t.values()) clearTimeout(timer);
      listeners.clear();
    },
  };
}
