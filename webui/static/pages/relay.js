// The relay part of /app/admin: live TURN allocations, bytes relayed, usage per person
// and refusals by reason, refreshed every few seconds while the page is open.

import { api, ApiError } from '../api.js';
import { cell, errorLine, h, show, table, timeEl } from '../ui.js';

const REFRESH_MS = 5000;

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function relaySection() {
  const names = new Map();
  const error = errorLine('relay-error');
  const summary = h('p', { class: 'muted', 'data-testid': 'relay-summary', text: 'Loading…' });
  const holder = h('div', { class: 'table-holder' });
  const refusals = h('p', { class: 'muted', 'data-testid': 'relay-refusals' });
  const el = h('section', { class: 'card', 'aria-labelledby': 'relay-title' },
    h('h2', { id: 'relay-title', text: 'Relay' }),
    h('p', { class: 'muted', text: 'Calls and file transfers fall back to the relay built into Hearth when devices cannot reach each other directly.' }),
    summary, holder, refusals, error);

  const who = (id) => names.get(id) || id;

  async function reload() {
    if (!el.isConnected) return false;
    try {
      if (!names.size) {
        const { users } = await api('GET', '/users');
        for (const u of users) names.set(u.id, u.display_name || u.name);
      }
      const st = await api('GET', '/admin/relay');
      const live = st.Allocations || [];
      summary.textContent = `${live.length} live allocation${live.length === 1 ? '' : 's'} · ` +
        `${bytes(st.BytesIn + st.BytesOut)} relayed since start · ${st.AllocationsTotal} allocations since start`;
      holder.replaceChildren(live.length
        ? table('relay-table', ['Person', 'Transport', 'Since', 'Peers', 'Relayed'], live.map((a) => h('tr', {},
          cell('Person', who(a.User)), cell('Transport', a.Transport), cell('Since', timeEl(a.Started)),
          cell('Peers', String(a.Peers)), cell('Relayed', bytes(a.BytesIn + a.BytesOut)), cell(''))))
        : h('p', { class: 'muted', text: 'Nothing is being relayed right now.' }));
      const reasons = Object.entries(st.Refusals || {}).filter(([, n]) => n > 0);
      refusals.textContent = reasons.length
        ? 'Refused: ' + reasons.map(([r, n]) => `${r} ${n}`).join(', ')
        : 'No refused requests.';
      show(error, '');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      summary.textContent = '';
      show(error, err.code === 'no_relay' ? 'The relay is off on this Hearth (see `hearth doctor`).' : err.message);
    }
    return true;
  }

  (async function loop() {
    await new Promise((r) => setTimeout(r, 0));
    while (await reload()) await new Promise((r) => setTimeout(r, REFRESH_MS));
  })();
  return el;
}
