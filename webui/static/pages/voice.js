// /app/voice: voice channels with who is in each, and the call controls: a big push-to-talk
// button (or Space, configurable), voice activity (stay unmuted), mute, deafen, per-person
// volume, the one-talker mode and who holds the floor. The call itself lives in
// voice/session.js and goes on while other pages are shown.

import { avatar } from '../chat/format.js';
import { h, icon } from '../ui.js';
import { voiceSession } from '../voice/session.js';

const STATUS_WORDS = {
  joining: 'Joining\u2026',
  waiting: 'Waiting for the network\u2026',
  connecting: 'Connecting\u2026',
  reconnecting: 'Reconnecting\u2026',
  connected: 'Connected',
};

/** A readable name for a KeyboardEvent.code ("Space", "F8", "Right Ctrl"). */
function keyName(code) {
  if (code === 'Space') return 'Space';
  const m = code.match(/^(Key|Digit)(.)$/);
  if (m) return m[2];
  const side = code.match(/^(Control|Shift|Alt|Meta)(Left|Right)$/);
  if (side) return `${side[2]} ${{ Control: 'Ctrl', Meta: 'Cmd/Win' }[side[1]] || side[1]}`;
  return code.replace(/([a-z])([A-Z])/g, '$1 $2');
}

/** True when a key press belongs to the control that has focus (typing, sliders, selects). */
function typingInto(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable || target.closest('textarea, select, [contenteditable]')) return true;
  if (target instanceof HTMLInputElement) return !['checkbox', 'radio', 'button', 'submit'].includes(target.type);
  return false;
}

export function render(view, ctx) {
  document.title = 'Voice \u00b7 Hearth';
  view.classList.add('view-voice');
  const session = voiceSession(ctx.live);
  session.attach(view.closest('.frame'));
  const chat = ctx.chat;
  let capturing = false; // choosing a new push-to-talk key

  // ---- Messages ----
  const messageText = h('span', { class: 'voice-message-text' });
  const dismiss = h('button', { type: 'button', class: 'icon-button small', 'aria-label': 'Dismiss', title: 'Dismiss',
    onclick: () => session.dismiss() }, icon('close'));
  const messageBox = h('div', { class: 'voice-message', role: 'alert', 'data-testid': 'voice-message', hidden: true },
    messageText, dismiss);
  const unblock = h('button', { type: 'button', class: 'primary wide', 'data-testid': 'voice-unblock', hidden: true,
    text: 'Tap to turn on call sound', onclick: () => session.resumeAudio() });

  // ---- Call panel ----
  const callTitle = h('h2', { id: 'voice-call-title', class: 'voice-call-title' });
  const callStatus = h('span', { class: 'badge', 'data-testid': 'voice-status', role: 'status' });
  const pttLabel = h('span', { class: 'ptt-label' });
  const pttHint = h('span', { class: 'ptt-hint' });
  const ptt = h('button', { type: 'button', class: 'ptt', 'data-testid': 'voice-ptt', 'aria-pressed': 'false',
    'aria-describedby': 'voice-ptt-hint' }, icon('voice'), pttLabel);
  pttHint.id = 'voice-ptt-hint';

  const modeSwitch = h('input', { type: 'checkbox', id: 'voice-open-mic', role: 'switch', 'data-testid': 'voice-open-mic' });
  const muteButton = h('button', { type: 'button', 'data-testid': 'voice-mute', 'aria-pressed': 'false' });
  const deafButton = h('button', { type: 'button', 'data-testid': 'voice-deafen', 'aria-pressed': 'false' });
  const leaveButton = h('button', { type: 'button', class: 'danger', 'data-testid': 'voice-leave', text: 'Leave',
    onclick: () => session.leave() });
  const oneTalker = h('input', { type: 'checkbox', id: 'voice-one-talker', 'data-testid': 'voice-one-talker' });
  const floorText = h('span', { class: 'muted small', 'data-testid': 'voice-floor' });
  const keyText = h('kbd', { 'data-testid': 'voice-key' });
  const keyButton = h('button', { type: 'button', class: 'quiet', 'data-testid': 'voice-key-change', text: 'Change' });
  const keyRow = h('p', { class: 'voice-key small muted' }, 'Push-to-talk key: ', keyText, ' ', keyButton);

  const callPanel = h('section', { class: 'card voice-call', 'data-testid': 'voice-call', 'aria-labelledby': 'voice-call-title', hidden: true },
    h('div', { class: 'voice-call-head' }, callTitle, callStatus),
    h('div', { class: 'ptt-holder' }, ptt, pttHint),
    h('div', { class: 'voice-controls' },
      h('label', { class: 'voice-switch', for: 'voice-open-mic', 'data-testid': 'voice-open-mic-label' }, modeSwitch, h('span', { text: 'Voice activity (stay unmuted)' })),
      h('div', { class: 'voice-buttons' }, muteButton, deafButton, leaveButton)),
    h('div', { class: 'voice-floor-row' },
      h('label', { class: 'voice-switch', for: 'voice-one-talker' }, oneTalker, h('span', { text: 'One talker at a time' })),
      floorText),
    keyRow);

  // ---- Rooms ----
  const roomList = h('ul', { class: 'voice-rooms', 'data-testid': 'voice-rooms' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('div', { class: 'empty-icon', 'aria-hidden': 'true' }, icon('voice')),
    h('h2', { text: 'No voice channels yet' }),
    h('p', { class: 'muted', text: 'An admin can make a voice channel from Chat \u2192 New channel.' }));
  const loading = h('p', { class: 'muted', role: 'status', text: 'Loading voice channels\u2026' });

  view.append(
    h('h1', { class: 'page-title', tabindex: '-1', text: 'Voice' }),
    messageBox, unblock,
    h('div', { class: 'voice-layout' },
      callPanel,
      h('section', { class: 'voice-rooms-section', 'aria-labelledby': 'voice-rooms-title' },
        h('h2', { class: 'voice-rooms-title', id: 'voice-rooms-title', text: 'Voice channels' }),
        loading, empty, roomList)));

  const entries = new Map(); // room id → { li, name, count, button, list, people: Map(participant → row) }

  function roomEntry(ch) {
    let e = entries.get(ch.id);
    if (e) return e;
    const name = h('span', { class: 'voice-room-name' });
    const count = h('span', { class: 'badge', 'data-testid': 'voice-count' });
    const button = h('button', { type: 'button', 'data-testid': 'voice-join' });
    button.addEventListener('click', () => {
      if (session.wanted === ch.id) session.leave();
      else session.join(ch.id);
    });
    const list = h('ul', { class: 'voice-people', 'data-testid': 'voice-people' });
    const nobody = h('p', { class: 'muted small voice-nobody', text: 'Nobody is here.' });
    const li = h('li', { class: 'card voice-room', 'data-testid': 'voice-room', 'data-room': ch.id },
      h('div', { class: 'voice-room-head' },
        h('span', { class: 'conv-icon', 'aria-hidden': 'true' }, icon('voice')), name, count, button),
      list, nobody);
    e = { li, name, count, button, list, nobody, people: new Map() };
    entries.set(ch.id, e);
    return e;
  }

  function personRow(e, p) {
    let row = e.people.get(p.id);
    if (row) return row;
    const av = h('span', { class: 'voice-avatar' });
    const name = h('span', { class: 'voice-person-name' });
    const flags = h('span', { class: 'voice-flags' });
    const slider = h('input', { type: 'range', min: '0', max: '100', step: '5', class: 'voice-volume',
      'data-testid': 'voice-volume' });
    slider.addEventListener('input', () => session.setVolume(p.user_id, Number(slider.value) / 100));
    const li = h('li', { class: 'voice-person', 'data-testid': 'voice-participant', 'data-user': p.user_id },
      av, h('span', { class: 'voice-person-main' }, name, flags), slider);
    row = { li, av, name, flags, slider, key: '' };
    e.people.set(p.id, row);
    return row;
  }

  /** The person's display name as chat knows it (voice.state carries the account name). */
  function who(p) {
    const u = chat?.users.get(p.user_id);
    return (u && (u.display_name || u.name)) || p.name || 'Someone';
  }

  function drawPerson(row, p, st, inRoom) {
    const me = p.id === session.me || (!session.me && p.user_id === ctx.user.id && session.wanted === st.room);
    const name = who(p);
    const key = [name, p.user_id, me].join('\u0000');
    if (row.key !== key) {
      row.key = key;
      row.av.replaceChildren(avatar({ id: p.user_id, display_name: name }, { presence: false }));
      row.name.textContent = me ? `${name} (you)` : name;
      row.slider.setAttribute('aria-label', `Volume for ${name}`);
      row.slider.title = `Volume for ${name}`;
    }
    row.li.dataset.speaking = String(Boolean(p.speaking));
    row.li.dataset.me = String(me);
    row.li.classList.toggle('speaking', Boolean(p.speaking));
    const flags = [];
    if (p.speaking) flags.push(['speaking', 'Speaking']);
    if (st.one_talker && st.floor === p.id) flags.push(['floor', 'Has the floor']);
    if (p.deafened) flags.push(['deafened', 'Deafened']);
    else if (p.muted) flags.push(['muted', 'Muted']);
    if (!p.connected) flags.push(['connecting', 'Connecting']);
    const sig = flags.map((f) => f[0]).join(',');
    if (row.flags.dataset.sig !== sig) {
      row.flags.dataset.sig = sig;
      row.flags.replaceChildren(...flags.map(([kind, text]) => h('span', { class: `voice-flag ${kind}`, 'data-flag': kind, text })));
    }
    row.slider.hidden = me || !inRoom;
    if (document.activeElement !== row.slider) row.slider.value = String(Math.round(session.volume(p.user_id) * 100));
  }

  function drawRooms() {
    const channels = chat?.list('voice') || [];
    loading.hidden = channels.length > 0 || chatReady;
    empty.hidden = !chatReady || channels.length > 0;
    const seen = new Set();
    const items = channels.map((ch) => {
      seen.add(ch.id);
      const e = roomEntry(ch);
      const st = session.rooms.get(ch.id) || { room: ch.id, participants: [] };
      const people = st.participants || [];
      e.li.dataset.name = ch.name;
      e.name.textContent = ch.name;
      e.count.textContent = people.length === 1 ? '1 person' : `${people.length} people`;
      e.count.hidden = people.length === 0;
      const inRoom = session.wanted === ch.id;
      e.li.classList.toggle('current', inRoom);
      e.button.textContent = inRoom ? 'Leave' : session.wanted ? 'Switch here' : 'Join';
      e.button.className = inRoom ? 'danger' : 'primary';
      e.button.setAttribute('aria-label', `${inRoom ? 'Leave' : 'Join'} ${ch.name}`);
      const ids = new Set();
      const rows = people.map((p) => {
        ids.add(p.id);
        const row = personRow(e, p);
        drawPerson(row, p, st, inRoom);
        return row.li;
      });
      for (const id of [...e.people.keys()]) if (!ids.has(id)) e.people.delete(id);
      syncChildren(e.list, rows);
      e.nobody.hidden = people.length > 0;
      return e.li;
    });
    for (const id of [...entries.keys()]) if (!seen.has(id)) entries.delete(id);
    syncChildren(roomList, items);
  }

  function drawCall() {
    const call = session.call;
    const room = session.wanted;
    callPanel.hidden = !room;
    const m = session.message;
    messageBox.hidden = !m;
    messageBox.dataset.kind = m?.kind || '';
    messageBox.setAttribute('role', m?.kind === 'error' ? 'alert' : 'status');
    messageText.textContent = m?.text || '';
    unblock.hidden = !call?.blocked;
    if (!room) return;
    const ch = chat?.channels.get(room);
    callTitle.textContent = ch ? `In ${ch.name}` : 'In a voice channel';
    const status = call ? call.status : 'reconnecting';
    callStatus.textContent = STATUS_WORDS[status] || '';
    callStatus.className = status === 'connected' ? 'badge ok' : 'badge';
    callStatus.dataset.state = status;

    const st = session.rooms.get(room);
    const noMic = !call?.track && call?.pc;
    const open = session.mode === 'open';
    modeSwitch.checked = open;
    ptt.dataset.mode = open ? 'open' : 'ptt';
    ptt.classList.toggle('on-air', !session.muted);
    ptt.disabled = Boolean(noMic) || session.deafened;
    if (noMic) {
      pttLabel.textContent = 'Listening only';
      pttHint.textContent = 'No microphone in this call.';
    } else if (session.deafened) {
      pttLabel.textContent = 'Deafened';
      pttHint.textContent = 'Undeafen to talk and hear the others.';
    } else if (open) {
      pttLabel.textContent = session.selfMuted ? 'Mic off' : 'Mic on';
      pttHint.textContent = session.selfMuted ? 'Tap to turn your microphone on.' : 'Others hear you. Tap to mute.';
    } else if (session.selfMuted) {
      pttLabel.textContent = 'Muted';
      pttHint.textContent = 'Unmute to use push-to-talk.';
    } else {
      pttLabel.textContent = session.talking ? 'Talking\u2026' : 'Hold to talk';
      pttHint.textContent = `Hold the button, or hold ${keyName(session.pttKey)} on a keyboard.`;
    }
    ptt.setAttribute('aria-pressed', String(open ? !session.selfMuted : session.talking));
    muteButton.textContent = session.selfMuted ? 'Unmute' : 'Mute';
    muteButton.setAttribute('aria-pressed', String(session.selfMuted));
    muteButton.disabled = Boolean(noMic);
    deafButton.textContent = session.deafened ? 'Undeafen' : 'Deafen';
    deafButton.setAttribute('aria-pressed', String(session.deafened));

    oneTalker.checked = Boolean(st?.one_talker);
    oneTalker.disabled = !call?.participant;
    if (st?.one_talker) {
      const holder = (st.participants || []).find((p) => p.id === st.floor);
      floorText.textContent = !holder ? 'Nobody has the floor.'
        : holder.id === session.me ? 'You have the floor.' : `${who(holder)} has the floor.`;
    } else {
      floorText.textContent = '';
    }
    keyText.textContent = capturing ? 'press a key\u2026' : keyName(session.pttKey);
    keyButton.textContent = capturing ? 'Cancel' : 'Change';
    keyRow.hidden = open || Boolean(noMic);
    modeSwitch.parentElement.hidden = Boolean(noMic);
  }

  function draw() {
    drawCall();
    drawRooms();
  }

  // ---- Controls ----
  const talkOn = (event) => {
    if (session.mode !== 'ptt' || ptt.disabled) return;
    event.preventDefault();
    ptt.setPointerCapture?.(event.pointerId);
    session.talk(true);
  };
  const talkOff = () => {
    if (session.mode === 'ptt') session.talk(false);
  };
  ptt.addEventListener('pointerdown', talkOn);
  ptt.addEventListener('pointerup', talkOff);
  ptt.addEventListener('pointercancel', talkOff);
  ptt.addEventListener('lostpointercapture', talkOff);
  ptt.addEventListener('contextmenu', (event) => event.preventDefault()); // long press on phones
  ptt.addEventListener('click', () => {
    if (session.mode === 'open') session.setMuted(!session.selfMuted);
  });
  ptt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && session.mode === 'ptt') {
      event.preventDefault();
      if (!event.repeat && !ptt.disabled) session.talk(true);
    }
  });
  ptt.addEventListener('keyup', (event) => {
    if (event.key === 'Enter') talkOff();
  });
  modeSwitch.addEventListener('change', () => session.setMode(modeSwitch.checked ? 'open' : 'ptt'));
  muteButton.addEventListener('click', () => session.setMuted(!session.selfMuted));
  deafButton.addEventListener('click', () => session.setDeafened(!session.deafened));
  oneTalker.addEventListener('change', () => session.setOneTalker(oneTalker.checked));
  keyButton.addEventListener('click', () => {
    capturing = !capturing;
    drawCall();
  });

  // Space (or the chosen key) held anywhere on this page talks, except while typing.
  const onKeyDown = (event) => {
    if (capturing) {
      if (event.code === 'Tab') return;
      event.preventDefault();
      capturing = false;
      if (event.code !== 'Escape') session.setPttKey(event.code);
      else drawCall();
      keyButton.focus();
      return;
    }
    if (event.code !== session.pttKey || !session.call || session.mode !== 'ptt') return;
    if (typingInto(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    if (!event.repeat) session.talk(true);
  };
  const onKeyUp = (event) => {
    if (event.code !== session.pttKey || session.mode !== 'ptt') return;
    if (session.talking) event.preventDefault(); // no button "click" from a Space that talked
    session.talk(false);
  };
  const release = () => session.talk(false);
  const onVisibility = () => {
    if (document.visibilityState === 'hidden') release();
  };
  document.addEventListener('keydown', onKeyDown);
  document.addEventListener('keyup', onKeyUp);
  window.addEventListener('blur', release);
  document.addEventListener('visibilitychange', onVisibility);

  let chatReady = false;
  const offs = [session.on(draw)];
  if (chat) {
    offs.push(chat.on('channels', draw), chat.on('users', drawRooms));
    Promise.resolve(chat.ready).catch(() => {}).then(() => {
      chatReady = true;
      if (view.isConnected) drawRooms();
    });
  }
  draw();

  return {
    destroy() {
      for (const off of offs) off();
      document.removeEventListener('keydown', onKeyDown);
      document.removeEventListener('keyup', onKeyUp);
      window.removeEventListener('blur', release);
      document.removeEventListener('visibilitychange', onVisibility);
      session.talk(false);
    },
  };
}

/** Makes parent's children exactly nodes, in order, moving as little as possible. */
function syncChildren(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}
