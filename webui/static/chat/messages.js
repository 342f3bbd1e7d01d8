// The message list of one conversation: day separators, grouping, replies, reactions,
// attachments, inline edit, delete, scroll-back, jump to a message, read positions, and the
// messages still in the outbox. DOM nodes are kept per message and only replaced when that
// message changes, so scrolling, focus and an edit in progress survive live updates.

import { ApiError } from '../api.js';
import { h, icon } from '../ui.js';
import { confirmDialog } from './dialogs.js';
import {
  attachmentEl, avatar, clock, dayKey, dayLabel, formatSize, plainText, renderSpans, shortClock,
} from './format.js';

export const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '✅'];
const GROUP_MS = 5 * 60 * 1000;
const NEAR_BOTTOM = 80;

/**
 * Options: chat (the store), onReply(message), onError(message), announce(text).
 * Returns { el, show(channelId), jumpTo(seq), editLast(), scrollToBottom(), destroy() }.
 */
export function createMessageList({ chat, onReply, onError, announce }) {
  const me = chat.me;
  let channelId = '';
  let stick = true;
  let unreadFrom = 0;
  let editing = null; // { seq, el }
  let readTimer = 0;
  const nodes = new Map(); // seq → { m, grouped, el }
  const pendingNodes = new Map(); // key → { item, el }
  const days = new Map(); // day key → separator

  const top = h('div', { class: 'history-top' });
  const bottom = h('div', { class: 'history-bottom', hidden: true });
  const newLine = h('div', { class: 'new-line', 'data-testid': 'new-line' }, h('span', { text: 'New' }));
  const list = h('div', { class: 'messages', 'data-testid': 'messages' });
  const scroller = h('div', { class: 'msg-scroll', tabindex: '-1' }, list);
  const jump = h('button', { type: 'button', class: 'jump-latest', hidden: true, 'data-testid': 'jump-latest' },
    icon('down'), h('span', { text: 'Newest' }));
  const el = h('div', { class: 'msg-area' }, scroller, jump);
  const menu = createMenu();

  // ---- Rendering ----

  function grouped(prev, m) {
    if (!prev || prev.author !== m.author || prev.deleted || m.deleted || m.quote) return false;
    if (dayKey(prev.created) !== dayKey(m.created)) return false;
    return new Date(m.created) - new Date(prev.created) < GROUP_MS;
  }

  function render() {
    if (!channelId) return;
    const hist = chat.history(channelId);
    const ch = chat.channels.get(channelId);
    const keep = firstVisible();
    const focus = focusInfo();
    const wanted = [top];
    updateTop(hist, ch);
    const seen = new Set();
    let prev = null;
    let newLineShown = false;
    for (const m of hist.messages) {
      const day = dayKey(m.created);
      if (!prev || dayKey(prev.created) !== day) wanted.push(daySeparator(day, m.created));
      let afterLine = false;
      if (!newLineShown && unreadFrom && m.seq > unreadFrom && m.author !== me.id) {
        wanted.push(newLine);
        newLineShown = afterLine = true;
      }
      const g = !afterLine && grouped(prev, m);
      let node = nodes.get(m.seq);
      if (!node || node.m !== m || node.grouped !== g || node.dirty) {
        node = { m, grouped: g, el: messageEl(m, g) };
        nodes.set(m.seq, node);
      }
      seen.add(m.seq);
      wanted.push(node.el);
      prev = m;
    }
    for (const seq of [...nodes.keys()]) if (!seen.has(seq)) nodes.delete(seq);
    bottom.hidden = !hist.newer;
    if (hist.newer) {
      if (!bottom.firstChild) {
        bottom.append(h('button', { type: 'button', class: 'quiet', 'data-testid': 'load-newer',
          text: 'Show newer messages', onclick: () => loadNewer() }));
      }
      wanted.push(bottom);
    }
    const pendingSeen = new Set();
    for (const item of chat.pending(channelId)) {
      let node = pendingNodes.get(item.key);
      if (!node || node.state !== item.state) {
        node = { state: item.state, el: pendingEl(item) };
        pendingNodes.set(item.key, node);
      }
      pendingSeen.add(item.key);
      wanted.push(node.el);
    }
    for (const key of [...pendingNodes.keys()]) if (!pendingSeen.has(key)) pendingNodes.delete(key);
    reconcile(list, wanted);
    restoreFocus(focus);
    if (menu.target && !menu.target.isConnected) menu.close(false);
    restoreScroll(keep);
    maybeRead();
  }

  function daySeparator(key, iso) {
    let sep = days.get(key);
    if (!sep) {
      sep = h('h3', { class: 'day' }, h('span', { text: dayLabel(iso) }));
      days.set(key, sep);
    }
    return sep;
  }

  function updateTop(hist, ch) {
    if (hist.older) {
      if (!top.querySelector('button')) {
        top.replaceChildren(h('button', { type: 'button', class: 'quiet', 'data-testid': 'load-older',
          text: 'Load older messages', onclick: () => loadOlder() }));
      }
    } else if (hist.loaded) {
      const title = chat.channelTitle(ch);
      top.replaceChildren(
        h('p', { class: 'history-start', 'data-testid': 'history-start' },
          h('strong', { text: ch?.kind === 'dm' ? `This is the start of your conversation with ${title}.`
            : `This is the start of ${title}.` }),
          ch?.topic ? h('span', { class: 'muted block', text: ch.topic }) : null));
    } else {
      top.replaceChildren(h('p', { class: 'muted history-start', role: 'status', text: 'Loading messages\u2026' }));
    }
  }

  /** Makes parent's children exactly `wanted`, moving as few nodes as possible. */
  function reconcile(parent, wanted) {
    let cur = parent.firstChild;
    for (const node of wanted) {
      if (node === cur) {
        cur = cur.nextSibling;
        continue;
      }
      parent.insertBefore(node, cur);
    }
    while (cur) {
      const next = cur.nextSibling;
      cur.remove();
      cur = next;
    }
  }

  /** Where focus is inside a message, so that it can come back after the message is rebuilt. */
  function focusInfo() {
    const active = document.activeElement;
    const article = active && list.contains(active) ? active.closest('.msg[data-seq]') : null;
    return article ? { el: active, seq: Number(article.dataset.seq), fk: active.dataset.fk || '' } : null;
  }

  function restoreFocus(info) {
    if (!info || info.el.isConnected) return;
    const node = nodes.get(info.seq);
    const twin = node && info.fk ? node.el.querySelector(`[data-fk="${CSS.escape(info.fk)}"]`) : null;
    (twin || node?.el || scroller).focus({ preventScroll: true });
  }

  function messageEl(m, isGrouped) {
    const author = chat.users.get(m.author);
    const name = chat.userName(m.author);
    const mine = m.author === me.id;
    const article = h('article', {
      class: 'msg' + (isGrouped ? ' grouped' : '') + (mine ? ' mine' : '') + (m.deleted ? ' deleted' : ''),
      'data-testid': 'message', 'data-seq': m.seq, 'data-author': author?.name || '', tabindex: '-1',
    });
    const time = h('time', { class: 'msg-time', datetime: m.created, title: new Date(m.created).toLocaleString(),
      text: clock(m.created) });
    const gutter = h('div', { class: 'msg-gutter' },
      isGrouped ? h('span', { class: 'msg-time-side', 'aria-hidden': 'true', text: shortClock(m.created) }) : avatar(author));
    const head = h('p', { class: isGrouped ? 'msg-head sr-only' : 'msg-head' },
      h('strong', { class: 'msg-author', 'data-testid': 'message-author', text: name }), ' ', time);
    const body = h('div', { class: 'msg-body' }, head);

    if (m.quote && m.reply_to) {
      body.append(h('button', {
        type: 'button', class: 'msg-quote', 'data-testid': 'quote', 'data-fk': 'quote',
        'aria-label': `In reply to ${chat.userName(m.quote.author)}: ${m.quote.text || 'a message'}. Show it.`,
        onclick: () => jumpTo(m.reply_to),
      }, icon('reply'), h('strong', { text: chat.userName(m.quote.author) }),
      h('span', { class: 'msg-quote-text', text: m.quote.text || 'message' })));
    }

    if (m.deleted) {
      body.append(h('p', { class: 'msg-deleted', 'data-testid': 'message-deleted', text: 'message deleted' }));
      article.append(gutter, body);
      return article;
    }

    if (editing && editing.seq === m.seq) {
      body.append(editing.el);
    } else if (m.text || (m.spans && m.spans.length)) {
      const text = h('div', { class: 'msg-text', 'data-testid': 'message-text' },
        renderSpans(m.spans && m.spans.length ? m.spans : [{ t: 'text', v: m.text }], { me: me.name }));
      if (m.edited) {
        text.append(' ', h('span', { class: 'msg-edited', 'data-testid': 'edited', title: new Date(m.edited).toLocaleString(),
          text: '(edited)' }));
      }
      body.append(text);
    }
    if (m.attachments?.length) {
      body.append(h('div', { class: 'msg-files' }, m.attachments.map(attachmentEl)));
    }
    const reactions = Object.entries(m.reactions || {}).filter(([, ids]) => ids && ids.length);
    if (reactions.length) {
      body.append(h('div', { class: 'msg-reactions' }, reactions.map(([emoji, ids]) => {
        const mineToo = ids.includes(me.id);
        const names = ids.map((id) => (id === me.id ? 'you' : chat.userName(id))).join(', ');
        return h('button', {
          type: 'button', class: 'reaction', 'data-testid': 'reaction', 'data-emoji': emoji, 'data-fk': 'r' + emoji,
          'aria-pressed': String(mineToo), title: names, 'aria-label': `${emoji} ${ids.length}: ${names}`,
          onclick: () => act(() => chat.react(channelId, m.seq, emoji, !mineToo)),
        }, h('span', { class: 'reaction-emoji', text: emoji }), h('span', { class: 'reaction-count', text: String(ids.length) }));
      })));
    }
    const more = h('button', {
      type: 'button', class: 'msg-more', 'data-testid': 'message-actions', 'data-fk': 'more',
      'aria-label': `Actions for message from ${name} at ${clock(m.created)}`, 'aria-haspopup': 'menu', 'aria-expanded': 'false',
    }, icon('more'));
    more.addEventListener('click', () => menu.open(article, m, more));
    article.append(gutter, body, more);
    return article;
  }

  function pendingEl(item) {
    const failed = item.state === 'failed';
    const status = failed
      ? h('span', { class: 'msg-status failed', 'data-testid': 'pending-status', text: 'Not sent' })
      : h('span', { class: 'msg-status', 'data-testid': 'pending-status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        navigator.onLine ? 'sending\u2026' : 'sending\u2026 (waiting for connection)');
    const body = h('div', { class: 'msg-body' },
      h('p', { class: 'msg-head' }, h('strong', { class: 'msg-author', text: chat.userName(me.id) }), ' ', status),
      item.text ? h('div', { class: 'msg-text', 'data-testid': 'pending-text' }, plainText(item.text)) : null,
      item.files?.length ? h('ul', { class: 'pending-files' },
        item.files.map((f) => h('li', { class: 'file-chip' }, h('span', { class: 'file-name', text: f.name }),
          h('span', { class: 'file-size', text: formatSize(f.size) })))) : null,
      failed ? h('div', { class: 'pending-error', role: 'alert' },
        h('span', { text: item.error }),
        h('button', { type: 'button', class: 'quiet', 'data-testid': 'pending-retry', text: 'Try again',
          onclick: () => chat.retry(item.key) }),
        h('button', { type: 'button', class: 'quiet danger', 'data-testid': 'pending-discard', text: 'Discard',
          onclick: () => chat.discard(item.key) })) : null);
    return h('article', { class: 'msg pending mine' + (failed ? ' failed' : ''), 'data-testid': 'pending',
      'data-key': item.key }, h('div', { class: 'msg-gutter' }, avatar(chat.users.get(me.id) || me, { presence: false })), body);
  }

  // ---- Actions ----

  async function act(fn) {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      onError(err.message);
    }
  }

  function startEdit(m) {
    if (m.author !== me.id || m.deleted) return;
    const input = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', 'data-testid': 'edit-input',
      rows: 2, maxlength: 4000 });
    input.value = m.text;
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { class: 'msg-edit', 'data-testid': 'edit-form' }, input, error,
      h('div', { class: 'edit-actions' },
        h('span', { class: 'hint', text: 'Enter to save \u00b7 Escape to cancel' }),
        h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => stopEdit(true) }),
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'edit-save', text: 'Save' })));
    const save = async () => {
      const text = input.value.trim();
      if (!text && !m.attachments?.length) {
        error.textContent = 'A message needs some text. To remove it, delete it instead.';
        error.hidden = false;
        return;
      }
      if (text === m.text) {
        stopEdit(true);
        return;
      }
      form.setAttribute('aria-busy', 'true');
      try {
        await chat.edit(channelId, m.seq, text);
        stopEdit(true);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        form.removeAttribute('aria-busy');
      }
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        stopEdit(true);
      }
    });
    if (editing) stopEdit(false);
    editing = { seq: m.seq, el: form };
    markDirty(m.seq);
    render();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function stopEdit(refocus) {
    if (!editing) return;
    const { seq } = editing;
    editing = null;
    markDirty(seq);
    render();
    if (refocus) nodes.get(seq)?.el.querySelector('.msg-more')?.focus({ preventScroll: true });
  }

  function markDirty(seq) {
    const node = nodes.get(seq);
    if (node) node.dirty = true;
  }

  async function remove(m) {
    const ok = await confirmDialog({
      title: 'Delete this message?',
      text: 'It disappears for everyone. This cannot be undone.',
      confirm: 'Delete',
      testid: 'confirm-delete',
    });
    if (ok) await act(() => chat.remove(channelId, m.seq));
  }

  function createMenu() {
    const emoji = EMOJI.map((e) => h('button', { type: 'button', role: 'menuitem', class: 'menu-emoji-btn',
      'data-emoji': e, 'data-testid': 'react-' + e, 'aria-label': 'React with ' + e, tabindex: '-1', text: e }));
    const reply = h('button', { type: 'button', role: 'menuitem', class: 'menu-item', 'data-act': 'reply',
      'data-testid': 'action-reply', tabindex: '-1' }, icon('reply'), 'Reply');
    const edit = h('button', { type: 'button', role: 'menuitem', class: 'menu-item', 'data-act': 'edit',
      'data-testid': 'action-edit', tabindex: '-1' }, icon('edit'), 'Edit');
    const del = h('button', { type: 'button', role: 'menuitem', class: 'menu-item danger', 'data-act': 'delete',
      'data-testid': 'action-delete', tabindex: '-1' }, icon('trash'), 'Delete');
    const box = h('div', { class: 'msg-menu', role: 'menu', 'aria-label': 'Message actions', 'data-testid': 'message-menu' },
      h('div', { class: 'menu-emoji', role: 'group', 'aria-label': 'React' }, emoji), reply, edit, del);
    const state = { target: null, message: null, button: null };

    const items = () => [...box.querySelectorAll('[role=menuitem]')].filter((b) => !b.hidden);
    function close(refocus = true) {
      if (!state.target) return;
      box.remove();
      state.button?.setAttribute('aria-expanded', 'false');
      if (refocus && state.button?.isConnected) state.button.focus({ preventScroll: true });
      state.target = state.message = state.button = null;
    }
    function open(article, m, button) {
      if (state.target === article) {
        close();
        return;
      }
      close(false);
      const mine = m.author === me.id;
      edit.hidden = !mine;
      del.hidden = !(mine || me.role === 'admin');
      const room = scroller.getBoundingClientRect();
      const at = button.getBoundingClientRect();
      box.classList.toggle('up', at.top - room.top > room.bottom - at.bottom);
      article.append(box);
      button.setAttribute('aria-expanded', 'true');
      state.target = article;
      state.message = m;
      state.button = button;
      items()[0].focus({ preventScroll: true });
    }
    box.addEventListener('click', (event) => {
      const item = event.target.closest('[role=menuitem]');
      if (!item || !state.message) return;
      const m = state.message;
      if (item.dataset.emoji) {
        const mine = (m.reactions?.[item.dataset.emoji] || []).includes(me.id);
        close();
        act(() => chat.react(channelId, m.seq, item.dataset.emoji, !mine));
      } else if (item.dataset.act === 'reply') {
        close(false);
        onReply(m);
      } else if (item.dataset.act === 'edit') {
        close(false);
        startEdit(m);
      } else if (item.dataset.act === 'delete') {
        close();
        remove(m);
      }
    });
    box.addEventListener('keydown', (event) => {
      const all = items();
      const i = all.indexOf(document.activeElement);
      const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };
      if (event.key in moves) {
        event.preventDefault();
        all[(i + moves[event.key] + all.length) % all.length].focus();
      } else if (event.key === 'Home' || event.key === 'End') {
        event.preventDefault();
        all[event.key === 'Home' ? 0 : all.length - 1].focus();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        close();
      } else if (event.key === 'Tab') {
        close();
      }
    });
    const outside = (event) => {
      if (state.target && !box.contains(event.target) && event.target !== state.button &&
          !state.button?.contains(event.target)) close(false);
    };
    document.addEventListener('pointerdown', outside);
    return {
      close,
      open,
      get target() {
        return state.target;
      },
      destroy() {
        document.removeEventListener('pointerdown', outside);
      },
    };
  }

  // ---- Scrolling and reading ----

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM;
  }

  /** The first message at least partly on screen, and how far from the top it is. */
  function firstVisible() {
    if (stick) return null;
    const top0 = scroller.getBoundingClientRect().top;
    for (const node of list.children) {
      if (!node.classList.contains('msg')) continue;
      const r = node.getBoundingClientRect();
      if (r.bottom > top0) return { node, offset: r.top - top0 };
    }
    return null;
  }

  function restoreScroll(keep) {
    if (stick) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (keep && keep.node.isConnected) {
      const now = keep.node.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
      scroller.scrollTop += now - keep.offset;
    }
    updateJump();
  }

  function updateJump() {
    const hist = channelId ? chat.history(channelId) : null;
    jump.hidden = stick && !hist?.newer;
  }

  function scrollToBottom() {
    stick = true;
    scroller.scrollTop = scroller.scrollHeight;
    updateJump();
    maybeRead();
  }

  async function loadOlder() {
    try {
      await chat.loadOlder(channelId);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      onError(err.message);
    }
  }

  async function loadNewer() {
    try {
      await chat.loadNewer(channelId);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      onError(err.message);
    }
  }

  jump.addEventListener('click', async () => {
    const hist = chat.history(channelId);
    if (hist.newer) {
      try {
        await chat.openChannel(channelId);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        onError(err.message);
      }
    }
    scrollToBottom();
  });

  scroller.addEventListener('scroll', () => {
    stick = atBottom();
    updateJump();
    if (stick && channelId && chat.history(channelId).newer) loadNewer();
    maybeRead({ debounce: true });
  }, { passive: true });
  // Pictures change heights as they load: stay at the bottom if we were there.
  scroller.addEventListener('load', () => {
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }, true);

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && channelId && chat.history(channelId).older) loadOlder();
  }, { root: scroller, rootMargin: '200px 0px 0px 0px' });
  observer.observe(top);

  /**
   * Marks the channel read when its newest message is on screen in a focused tab: at once
   * after a render (so a new message never flashes an unread badge), debounced while scrolling.
   */
  function maybeRead({ debounce = false } = {}) {
    clearTimeout(readTimer);
    if (!channelId || document.visibilityState !== 'visible' || !document.hasFocus() || !stick) return;
    const hist = chat.history(channelId);
    const ch = chat.channels.get(channelId);
    if (!ch || !hist.loaded || hist.newer || !hist.messages.length) return;
    const newest = hist.messages[hist.messages.length - 1].seq;
    if (newest <= ch.read_seq) return;
    if (!debounce) {
      chat.markRead(ch.id, newest);
      return;
    }
    readTimer = setTimeout(() => {
      if (channelId === ch.id && document.visibilityState === 'visible') chat.markRead(ch.id, newest);
    }, 300);
  }
  const onVisible = () => maybeRead();
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('focus', onVisible);

  // ---- Store events ----

  const offs = [
    chat.on('messages', (d) => {
      if (d.channel !== channelId) return;
      render();
      if (d.isNew) {
        const m = chat.history(channelId).bySeq.get(d.seq);
        if (m && m.author !== me.id) announce(`${chat.userName(m.author)}: ${m.text || 'sent a file'}`);
      }
    }),
    chat.on('outbox', (d) => {
      if (d.channel !== channelId) return;
      stick = stick || atBottom();
      render();
    }),
    chat.on('users', () => {
      // Presence changes often: move the dots rather than rebuilding every message.
      for (const dot of list.querySelectorAll('.chat-avatar[data-user] > .presence')) {
        dot.dataset.state = chat.users.get(dot.parentElement.dataset.user)?.presence || 'offline';
      }
    }),
    chat.on('reset', () => {
      if (channelId) show(channelId);
    }),
  ];
  const onNetwork = () => {
    pendingNodes.clear();
    render();
  };
  window.addEventListener('online', onNetwork);
  window.addEventListener('offline', onNetwork);

  async function show(id) {
    if (id !== channelId) {
      menu.close(false);
      editing = null;
      nodes.clear();
      pendingNodes.clear();
      days.clear();
      list.replaceChildren();
      const ch = chat.channels.get(id);
      unreadFrom = ch && ch.unread > 0 ? ch.read_seq || 0.5 : 0;
    }
    channelId = id;
    stick = true;
    render();
    try {
      await chat.openChannel(id);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      onError(err.message);
    }
    if (channelId === id) render();
  }

  async function jumpTo(seq) {
    try {
      await chat.loadAround(channelId, seq);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      onError(err.message);
      return;
    }
    render();
    const node = nodes.get(seq);
    if (!node) {
      onError('That message is no longer here.');
      return;
    }
    stick = false;
    node.el.scrollIntoView({ block: 'center' });
    stick = atBottom();
    updateJump();
    node.el.classList.remove('flash');
    void node.el.offsetWidth; // restart the highlight
    node.el.classList.add('flash');
    node.el.focus({ preventScroll: true });
  }

  return {
    el,
    show,
    /** Nothing shown (the phone's list screen): nothing gets marked read. */
    hide() {
      menu.close(false);
      channelId = '';
    },
    jumpTo,
    scrollToBottom,
    /** Edits the reader's newest message (ArrowUp in an empty composer). */
    editLast() {
      const msgs = chat.history(channelId).messages;
      for (let i = msgs.length - 1; i >= 0; i--) {
        if (msgs[i].author === me.id && !msgs[i].deleted) {
          startEdit(msgs[i]);
          nodes.get(msgs[i].seq)?.el.scrollIntoView({ block: 'nearest' });
          return true;
        }
      }
      return false;
    },
    destroy() {
      for (const off of offs) off();
      observer.disconnect();
      menu.destroy();
      clearTimeout(readTimer);
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', onVisible);
      window.removeEventListener('online', onNetwork);
      window.removeEventListener('offline', onNetwork);
    },
  };
}
