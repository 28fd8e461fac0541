// Drawing faces on a canvas: green mask, red no_mask, amber incorrect (as the Python annotator).
const MASKWATCH_COLORS = {mask: '#3cc83c', no_mask: '#e62828', incorrect: '#ffbe00'};

function drawFaces(canvas, source, faces) {
  canvas.width = source.width;
  canvas.height = source.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(source, 0, 0);
  const lw = Math.max(2, Math.round(Math.max(source.width, source.height) / 400));
  const font = Math.max(12, Math.round(Math.max(source.width, source.height) / 60));
  ctx.font = font + 'px sans-serif';
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.box;
    const color = MASKWATCH_COLORS[f.label] || '#ccc';
    ctx.strokeStyle = color;
    ctx.lineWidth = lw;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = f.label + ' ' + f.confidence.toFixed(2);
    const w = ctx.measureText(text).width + 6;
    const ty = y1 - font - 4 >= 0 ? y1 - font - 4 : y2;
    ctx.fillStyle = color;
    ctx.fillRect(x1, ty, w, font + 4);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + 3, ty + font);
  }
  canvas.dataset.faces = String(faces.length);
}
