// Cameras watched by the service (maskwatch serve --watch NAME=SOURCE): live counts per stream, the
// annotated preview, and a chart per minute of people seen (bars) and compliance rate (line).
// Plain canvas, no library. The section stays hidden when the service watches no stream.
(function () {
  const section = document.getElementById('streams'), list = document.getElementById('streamlist');
  if (!section) return;
  const cards = {};

  function headers() {
    const key = document.getElementById('key');
    return key && key.value ? {'X-API-Key': key.value} : {};
  }

  function card(name) {
    if (cards[name]) return cards[name];
    const el = document.createElement('div');
    el.className = 'stream';
    const img = document.createElement('img');
    img.alt = name + ' preview';
    img.src = '/v1/streams/' + encodeURIComponent(name) + '/preview';
    const figs = document.createElement('div');
    figs.className = 'figs';
    const canvas = document.createElement('canvas');
    canvas.width = 560; canvas.height = 180;
    el.append(img, figs, canvas);
    list.append(el);
    return (cards[name] = {el, figs, canvas});
  }

  function pct(v) { return v === null || v === undefined ? '-' : (100 * v).toFixed(1) + ' %'; }

  // A time axis of at least the last hour, one slot per minute, ending at the current minute.
  function chart(canvas, minutes) {
    const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height, pad = 34;
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui'; ctx.fillStyle = '#5c6670';
    const now = Math.floor(Date.now() / 60000) * 60;
    const first = minutes.length ? Math.min(minutes[0].minute, now) : now;
    const slots = Math.max(60, Math.round((now - first) / 60) + 1), start = now - 60 * (slots - 1);
    const hours = slots >= 120 ? (slots / 60).toFixed(0) + ' h' : slots + ' min';
    ctx.fillText('people per minute (bars) and compliance (line), last ' + hours, pad, 12);
    const bw = (W - 2 * pad) / slots, x = m => pad + ((m.minute - start) / 60) * bw;
    const top = Math.max(1, ...minutes.map(m => m.people));
    ctx.strokeStyle = '#e3e6ea'; ctx.beginPath(); ctx.moveTo(pad, H - pad); ctx.lineTo(W - pad, H - pad); ctx.stroke();
    ctx.fillStyle = '#9cb4d8';
    for (const m of minutes) {
      const h = (H - 2 * pad) * m.people / top;
      ctx.fillRect(x(m) + 0.5, H - pad - h, Math.max(1, bw - 1), h);
    }
    ctx.strokeStyle = '#2b8a3e'; ctx.fillStyle = '#2b8a3e'; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    for (const m of minutes) {
      if (m.compliance === null) continue;
      const cx = x(m) + bw / 2, cy = H - pad - (H - 2 * pad) * m.compliance;
      if (started) ctx.lineTo(cx, cy); else { ctx.moveTo(cx, cy); started = true; }
      ctx.fillRect(cx - 1.5, cy - 1.5, 3, 3);
    }
    ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = '#5c6670';
    ctx.fillText(String(top), 4, pad + 4); ctx.fillText('0', 4, H - pad);
    ctx.fillText('100%', W - pad + 3, pad + 4); ctx.fillText('0%', W - pad + 3, H - pad);
    const t = s => new Date(s * 1000).toTimeString().slice(0, 5);
    ctx.fillText(t(start), pad, H - pad + 14); ctx.fillText(t(now), W - pad - 28, H - pad + 14);
  }

  async function poll() {
    try {
      const r = await fetch('/v1/streams', {headers: headers()});
      if (r.ok) {
        const data = await r.json();
        section.style.display = data.streams.length ? 'block' : 'none';
        for (const s of data.streams) {
          const c = card(s.name), k = s.counts || {};
          c.figs.innerHTML = '';
          const lines = [
            [s.name + ' (' + s.state + ')', 'big'],
            ['people ' + (k.people || 0) + ' - compliance ' + pct(k.compliance), ''],
            ['mask ' + (k.mask || 0) + ', no mask ' + (k.no_mask || 0) + ', incorrect ' + (k.incorrect || 0), ''],
            ['alerts ' + (k.alerts || 0) + ' - ' + s.fps + ' fps - ' + s.reconnects + ' reconnections', ''],
            [s.error ? 'last error: ' + s.error : '', 'no_mask'],
          ];
          for (const [text, cls] of lines) {
            const d = document.createElement('div'); d.textContent = text; d.className = cls; c.figs.append(d);
          }
          chart(c.canvas, s.per_minute);
        }
      }
    } catch (e) { /* the service may be restarting: try again */ }
    setTimeout(poll, 2000);
  }
  poll();
})();
