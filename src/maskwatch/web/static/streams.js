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

  function chart(canvas, minutes) {
    const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height, pad = 28;
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui'; ctx.fillStyle = '#5c6670';
    ctx.fillText('people per minute (bars), compliance (line), last ' + minutes.length + ' min', pad, 12);
    if (!minutes.length) return;
    const n = minutes.length, bw = (W - 2 * pad) / Math.max(n, 1);
    const top = Math.max(1, ...minutes.map(m => m.people));
    ctx.strokeStyle = '#e3e6ea'; ctx.beginPath(); ctx.moveTo(pad, H - pad); ctx.lineTo(W - pad, H - pad); ctx.stroke();
    minutes.forEach((m, i) => {
      const h = (H - 2 * pad) * m.people / top;
      ctx.fillStyle = '#9cb4d8';
      ctx.fillRect(pad + i * bw + 1, H - pad - h, Math.max(1, bw - 2), h);
    });
    ctx.strokeStyle = '#2b8a3e'; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    minutes.forEach((m, i) => {
      if (m.compliance === null) return;
      const x = pad + (i + 0.5) * bw, y = H - pad - (H - 2 * pad) * m.compliance;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    });
    ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = '#5c6670';
    ctx.fillText(top + ' people', 2, pad); ctx.fillText('100 %', W - pad + 2, pad); ctx.fillText('0', W - pad + 2, H - pad);
    const t = m => new Date(m.minute * 1000).toTimeString().slice(0, 5);
    ctx.fillText(t(minutes[0]), pad, H - 8); ctx.fillText(t(minutes[n - 1]), W - pad - 30, H - 8);
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
