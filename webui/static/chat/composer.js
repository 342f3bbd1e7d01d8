// The composer: Enter sends, Shift+Enter starts a new line, @ opens mention suggestions
// (people, groups, @here, @channel), files come in through the attach button, drag and drop
// or paste and upload at once with a progress bar each. Sent messages go to the store's outbox.

import { upload } from '../api.js';
import { h, icon } from '../ui.js';
import { avatar, formatSize } from './format.js';

const MAX_RUNES = 4000;
const MENTION_RE = /(^|[^\w@])@([a-z0-9._-]{0,32})$/i;
const SPECIAL = [
  { insert: 'here', label: '@here', sub: 'Everyone in this conversation' },
  { insert: 'channel', label: '@channel', sub: 'Everyone who can read it' },
];

/**
 * Options: chat, onError(message), editLast() (ArrowUp in an empty composer), onSent().
 * Returns { el, show(channelId), focus(), reply(message), addFiles(files), destroy() }.
 */
export function createComposer({ chat, onError, editLast, onSent }) {
  let channelId = '';
  let replyTo = null;
  let suggestions = [];
  let active = 0;
  let uploadSeq = 0;
  const uploads = new Map(); // channel → [upload]

  const input = h('textarea', {
    id: 'composer-input', class: 'composer-input', 'data-testid': 'composer', rows: 1, enterkeyhint: 'send',
    'aria-describedby': 'composer-hint', 'aria-autocomplete': 'list', 'aria-controls': 'mention-list',
    'aria-expanded': 'false', autocomplete: 'off',
  });
  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'file-input', tabindex: '-1' });
  const attach = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'attach', 'aria-label': 'Attach files',
    title: 'Attach files' }, icon('attach'));
  const sendButton = h('button', { type: 'submit', class: 'icon-button send', 'data-testid': 'send', 'aria-label': 'Send',
    title: 'Send' }, icon('post'));
  const replyBar = h('div', { class: 'reply-bar', 'data-testid': 'reply-bar', hidden: true });
  const uploadList = h('ul', { class: 'uploads', 'data-testid': 'uploads', 'aria-label': 'Files to send', hidden: true });
  const listbox = h('ul', { class: 'mention-list', id: 'mention-list', role: 'listbox', 'aria-label': 'Mention suggestions',
    'data-testid': 'mention-list', hidden: true });
  const error = h('p', { class: 'composer-error', role: 'alert', 'data-testid': 'composer-error', hidden: true });
  const counter = h('span', { class: 'composer-count', 'aria-live': 'polite', hidden: true });
  const hint = h('p', { class: 'composer-hint', id: 'composer-hint' },
    h('span', { text: 'Enter to send \u00b7 Shift+Enter for a new line \u00b7 @ to mention' }), counter);
  const form = h('form', { class: 'composer', 'data-testid': 'composer-form', novalidate: true },
    replyBar, uploadList, listbox,
    h('div', { class: 'composer-box' }, attach, input, sendButton),
    error, hint, fileInput);

  const grow = !CSS.supports('field-sizing', 'content');
  function resize() {
    if (!grow) return;
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 200) + 'px';
  }

  function say(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  // ---- Mentions ----

  function candidates(q) {
    const lower = q.toLowerCase();
    const starts = (s) => String(s || '').toLowerCase().startsWith(lower);
    const words = (s) => String(s || '').toLowerCase().split(/\s+/).some((w) => w.startsWith(lower));
    const people = [...chat.users.values()]
      .filter((u) => u.id !== chat.me.id && (starts(u.name) || words(u.display_name)))
      .sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name))
      .map((u) => ({ insert: u.name, label: u.display_name || u.name, sub: '@' + u.name, user: u }));
    const gs = [...chat.groups.values()].filter((g) => starts(g.name)).sort((a, b) => a.name.localeCompare(b.name))
      .map((g) => ({ insert: g.name, label: '@' + g.name,
        sub: `Group \u00b7 ${g.members.length} ${g.members.length === 1 ? 'person' : 'people'}`, group: true }));
    const special = SPECIAL.filter((s) => starts(s.insert));
    return [...people, ...gs, ...special].slice(0, 8);
  }

  function mentionQuery() {
    if (input.selectionStart !== input.selectionEnd) return null;
    const m = input.value.slice(0, input.selectionStart).match(MENTION_RE);
    return m ? m[2] : null;
  }

  function updateSuggestions() {
    const q = mentionQuery();
    suggestions = q === null ? [] : candidates(q);
    active = 0;
    drawSuggestions();
  }

  function drawSuggestions() {
    const open = suggestions.length > 0;
    listbox.hidden = !open;
    input.setAttribute('aria-expanded', String(open));
    if (!open) {
      input.removeAttribute('aria-activedescendant');
      listbox.replaceChildren();
      return;
    }
    listbox.replaceChildren(...suggestions.map((s, i) => {
      const option = h('li', { role: 'option', id: 'mention-' + i, class: 'mention-option', 'data-testid': 'mention-option',
        'data-insert': s.insert, 'aria-selected': String(i === active) },
      s.user ? avatar(s.user) : h('span', { class: 'chat-avatar mention-at', 'aria-hidden': 'true' }, s.group ? icon('people') : '@'),
      h('span', { class: 'mention-words' }, h('strong', { text: s.label }), h('span', { class: 'muted small', text: s.sub })));
      option.addEventListener('pointerdown', (event) => event.preventDefault()); // keep focus in the composer
      option.addEventListener('click', () => accept(i));
      return option;
    }));
    input.setAttribute('aria-activedescendant', 'mention-' + active);
    listbox.children[active]?.scrollIntoView({ block: 'nearest' });
  }

  function accept(i) {
    const s = suggestions[i];
    if (!s) return;
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret).replace(/@([a-z0-9._-]{0,32})$/i, '@' + s.insert + ' ');
    const after = input.value.slice(caret).replace(/^\S*\s?/, '');
    input.value = before + after;
    input.setSelectionRange(before.length, before.length);
    suggestions = [];
    drawSuggestions();
    saveDraft();
    resize();
  }

  // ---- Uploads ----

  function channelUploads() {
    if (!uploads.has(channelId)) uploads.set(channelId, []);
    return uploads.get(channelId);
  }

  function drawUploads() {
    const list = channelUploads();
    uploadList.hidden = list.length === 0;
    uploadList.replaceChildren(...list.map((u) => u.el));
  }

  function uploadEl(u) {
    const progress = h('progress', { class: 'upload-progress', max: 100, value: 0, 'aria-label': `Uploading ${u.name}` });
    const status = h('span', { class: 'upload-status', 'data-testid': 'upload-status', text: 'Uploading\u2026' });
    const remove = h('button', { type: 'button', class: 'icon-button small', 'data-testid': 'upload-remove',
      'aria-label': `Cancel ${u.name}`, title: 'Remove' }, icon('close'));
    remove.addEventListener('click', () => {
      if (u.state === 'uploading') u.abort();
      drop(u);
      input.focus();
    });
    const el = h('li', { class: 'upload', 'data-testid': 'upload', 'data-state': 'uploading' },
      h('span', { class: 'upload-name', text: u.name }),
      h('span', { class: 'upload-size', text: formatSize(u.size) }),
      progress, status, remove);
    u.update = () => {
      el.dataset.state = u.state;
      progress.value = Math.round(u.progress * 100);
      progress.hidden = u.state !== 'uploading';
      status.textContent = u.state === 'done' ? 'Ready' : u.state === 'error' ? u.error : `${Math.round(u.progress * 100)}%`;
      status.classList.toggle('failed', u.state === 'error');
      remove.setAttribute('aria-label', `${u.state === 'uploading' ? 'Cancel' : 'Remove'} ${u.name}`);
    };
    return el;
  }

  function drop(u) {
    const list = uploads.get(u.channel) || [];
    const i = list.indexOf(u);
    if (i >= 0) list.splice(i, 1);
    if (u.channel === channelId) drawUploads();
    updateSend();
  }

  function addFiles(files) {
    if (!channelId || !files.length) return;
    if (!navigator.onLine) {
      say('You are offline. Files can be attached once Hearth is reachable again.');
      return;
    }
    say('');
    for (const file of files) {
      const name = file.name || 'file';
      const u = { id: ++uploadSeq, channel: channelId, name, size: file.size, progress: 0, state: 'uploading', error: '' };
      u.el = uploadEl(u);
      const req = upload(`/channels/${encodeURIComponent(channelId)}/attachments?name=${encodeURIComponent(name)}`, file, {
        onProgress: (f) => {
          u.progress = f;
          u.update();
        },
      });
      u.abort = req.abort;
      req.promise.then((res) => {
        u.state = 'done';
        u.progress = 1;
        u.attachment = res.attachment;
        u.update();
        updateSend();
      }, (err) => {
        if (err.code === 'aborted') return;
        u.state = 'error';
        u.error = err.message;
        u.update();
        updateSend();
      });
      u.update();
      channelUploads().push(u);
    }
    drawUploads();
    updateSend();
  }

  function updateSend() {
    const busy = channelUploads().some((u) => u.state === 'uploading');
    sendButton.setAttribute('aria-disabled', String(busy));
    sendButton.title = busy ? 'Waiting for files to upload' : 'Send';
  }

  // ---- Replies, drafts, sending ----

  function setReply(m) {
    replyTo = m;
    replyBar.hidden = !m;
    if (!m) {
      replyBar.replaceChildren();
      return;
    }
    replyBar.replaceChildren(
      icon('reply'),
      h('span', { class: 'reply-words' }, 'Replying to ', h('strong', { text: chat.userName(m.author) }),
        h('span', { class: 'reply-text', text: m.text || 'a file' })),
      h('button', { type: 'button', class: 'icon-button small', 'aria-label': 'Cancel reply', 'data-testid': 'reply-cancel',
        onclick: () => {
          setReply(null);
          input.focus();
        } }, icon('close')));
  }

  function saveDraft() {
    if (channelId) chat.drafts.set(channelId, input.value);
  }

  function submit() {
    if (!channelId) return;
    const list = channelUploads();
    if (list.some((u) => u.state === 'uploading')) {
      say('Wait a moment: the files are still uploading.');
      return;
    }
    const text = input.value.trim();
    const ready = list.filter((u) => u.state === 'done').map((u) => u.attachment);
    if (!text && !ready.length) return;
    if ([...text].length > MAX_RUNES) {
      say(`A message is at most ${MAX_RUNES} characters. Split it in two, or attach it as a file.`);
      return;
    }
    say('');
    chat.send(channelId, { text, replyTo: replyTo?.seq || 0, attachments: ready });
    chat.stoppedTyping(channelId);
    input.value = '';
    saveDraft();
    resize();
    setReply(null);
    uploads.set(channelId, list.filter((u) => u.state === 'error'));
    drawUploads();
    updateCount();
    onSent();
  }

  function updateCount() {
    const n = [...input.value].length;
    counter.hidden = n < MAX_RUNES - 500;
    counter.textContent = ` \u00b7 ${n} / ${MAX_RUNES}`;
    counter.classList.toggle('over', n > MAX_RUNES);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (event) => {
    if (!listbox.hidden) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        active = (active + (event.key === 'ArrowDown' ? 1 : -1) + suggestions.length) % suggestions.length;
        drawSuggestions();
        return;
      }
      if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
        event.preventDefault();
        accept(active);
        return;
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        suggestions = [];
        drawSuggestions();
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape' && replyTo) {
      event.preventDefault();
      setReply(null);
    } else if (event.key === 'ArrowUp' && input.value === '' && !event.shiftKey) {
      if (editLast()) event.preventDefault();
    }
  });
  input.addEventListener('input', () => {
    saveDraft();
    resize();
    updateCount();
    updateSuggestions();
    if (input.value.trim()) chat.typing(channelId);
  });
  input.addEventListener('click', updateSuggestions);
  input.addEventListener('blur', () => {
    suggestions = [];
    drawSuggestions();
  });
  input.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  attach.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
    input.focus();
  });

  return {
    el: form,
    show(id) {
      if (id === channelId) return;
      channelId = id;
      const ch = chat.channels.get(id);
      const label = 'Message ' + chat.channelTitle(ch);
      input.setAttribute('aria-label', label);
      input.placeholder = label;
      input.value = chat.drafts.get(id) || '';
      setReply(null);
      say('');
      suggestions = [];
      drawSuggestions();
      drawUploads();
      updateSend();
      updateCount();
      resize();
    },
    focus() {
      input.focus({ preventScroll: true });
    },
    reply(m) {
      setReply(m);
      input.focus();
    },
    addFiles,
    destroy() {
      for (const list of uploads.values()) for (const u of list) if (u.state === 'uploading') u.abort();
    },
  };
}
