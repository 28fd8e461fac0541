// On-device mode: the mobile model runs in this browser with onnxruntime-web (WebAssembly), so no
// picture leaves the device. Same steps as maskwatch/core/detector.py: resize the long side to the
// model's input size, pad to a multiple of its largest stride with its pad value, BGR float input;
// decode distances from the cell centres of its strides, threshold, NMS at the model's IoU, the class
// vote of each face's candidates (not the crop classifier: the page loads mobile.onnx alone). Every
// setting comes from GET /v1/models (the model registry, maskwatch/core/registry.py): none is kept here.
let sessionPromise = null;
let settings = null;

async function loadOrt() {
  try {
    const ort = await import('/static/ort/ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = '/static/ort/';
    // threads need SharedArrayBuffer, so a cross-origin isolated page (maskwatch serve sends the
    // COOP/COEP headers); one thread elsewhere. onnxruntime-web's own default is half the cores.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    return ort;
  } catch (err) {
    throw new Error('on-device mode needs the web assets: run scripts/vendor_web.sh (' + err.message + ')');
  }
}

async function session() {
  if (!sessionPromise) {
    sessionPromise = (async () => {
      const ort = await loadOrt();
      const res = await fetch('/v1/models');
      const info = res.ok ? await res.json() : {models: []};
      const m = (info.models || []).find(x => x.name === 'mobile');
      if (!m) throw new Error('cannot read the mobile model\'s settings from /v1/models (HTTP ' + res.status + ')');
      settings = {inputSize: m.input_size, threshold: m.score_threshold, nms: m.nms_threshold, voteIou: m.vote_iou, voteScore: m.vote_score, labels: m.labels,
                  strides: m.strides, padMultiple: m.pad_multiple, padValue: m.pad_value,
                  calibration: m.score_calibration};
      const s = await ort.InferenceSession.create('/models/mobile.onnx', {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
      return {ort, s};
    })();
  }
  return sessionPromise;
}

function preprocess(source, {inputSize, padMultiple, padValue}) {
  const w0 = source.width, h0 = source.height;
  const scale = inputSize / Math.max(w0, h0);
  const nw = Math.max(1, Math.round(w0 * scale)), nh = Math.max(1, Math.round(h0 * scale));
  const pw = Math.ceil(nw / padMultiple) * padMultiple, ph = Math.ceil(nh / padMultiple) * padMultiple;
  const canvas = new OffscreenCanvas(pw, ph);
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.fillStyle = `rgb(${padValue},${padValue},${padValue})`;
  ctx.fillRect(0, 0, pw, ph);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, nw, nh);
  const rgba = ctx.getImageData(0, 0, pw, ph).data;
  const n = pw * ph, data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {  // BGR planes
    data[i] = rgba[4 * i + 2];
    data[n + i] = rgba[4 * i + 1];
    data[2 * n + i] = rgba[4 * i];
  }
  return {data, pw, ph, scale};
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return u > 0 ? inter / u : 0;
}

// piecewise-linear map through knots xs -> ys (xs rising), held at the ends
function interp(v, xs, ys) {
  if (v <= xs[0]) return ys[0];
  for (let i = 1; i < xs.length; i++) {
    if (v <= xs[i]) return ys[i - 1] + (ys[i] - ys[i - 1]) * (v - xs[i - 1]) / Math.max(xs[i] - xs[i - 1], 1e-12);
  }
  return ys[ys.length - 1];
}

function decode(scores, dists, probs, pw, ph, scale, {threshold: thr, nms: nmsIou, voteIou, voteScore, labels, strides, calibration}, w0, h0) {
  // the model's face scores are calibrated (maskwatch.core.calibration): threshold the network's raw
  // score at the raw value of the threshold, report the calibrated score
  const [raw, cal] = calibration || [[0, 1], [0, 1]];
  const threshold = interp(thr, cal, raw);
  const cand = [];
  let a = 0;
  for (const s of strides) {
    const gw = Math.ceil(pw / s), gh = Math.ceil(ph / s);
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++, a++) {
        const sc = scores[a];
        if (sc < threshold && sc < voteScore) continue;  // below the threshold, a candidate may still vote
        const cx = (x + 0.5) * s, cy = (y + 0.5) * s;
        const box = [(cx - dists[4 * a]) / scale, (cy - dists[4 * a + 1]) / scale, (cx + dists[4 * a + 2]) / scale, (cy + dists[4 * a + 3]) / scale];
        box[0] = Math.min(Math.max(box[0], 0), w0); box[2] = Math.min(Math.max(box[2], 0), w0);
        box[1] = Math.min(Math.max(box[1], 0), h0); box[3] = Math.min(Math.max(box[3], 0), h0);
        cand.push({box, raw: sc, score: interp(sc, raw, cal), p: [probs[3 * a], probs[3 * a + 1], probs[3 * a + 2]]});
      }
    }
  }
  cand.sort((u, v) => v.score - u.score);
  const keep = [];
  for (const c of cand) {
    if (c.raw >= threshold && keep.every(k => iou(k.box, c.box) <= nmsIou)) keep.push(c);
  }
  const voters = cand.filter(c => c.raw >= voteScore);
  return keep.map(c => {
    const p = vote(c, voters, voteIou);
    const k = p.indexOf(Math.max(...p));
    return {box: c.box, label: labels[k], confidence: p[k], score: c.score};
  });
}

// a kept face's class probabilities: the raw-score-weighted geometric mean over the voters (network
// score >= voteScore) that overlap it by more than voteIou, and itself (maskwatch.core.geometry.class_vote)
function vote(kept, cand, voteIou) {
  const logp = [0, 0, 0];
  let total = 0;
  for (const c of cand) {
    if (c === kept || !(iou(kept.box, c.box) > voteIou)) continue;
    total += c.raw;
    for (let j = 0; j < 3; j++) logp[j] += c.raw * Math.log(Math.min(Math.max(c.p[j], 1e-6), 1));
  }
  const own = Math.max(kept.raw, 1e-6);  // a kept face always votes for itself, once
  total += own;
  for (let j = 0; j < 3; j++) logp[j] += own * Math.log(Math.min(Math.max(kept.p[j], 1e-6), 1));
  const p = logp.map(v => Math.exp(v / Math.max(total, 1e-12)));
  const sum = p.reduce((u, v) => u + v, 0);
  return p.map(v => v / sum);
}

async function detect(source) {
  const {ort, s} = await session();
  const {data, pw, ph, scale} = preprocess(source, settings);
  const feeds = {[s.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, ph, pw])};
  const out = await s.run(feeds);
  const [scores, boxes, classes] = s.outputNames.map(n => out[n].data);
  return decode(scores, boxes, classes, pw, ph, scale, settings, source.width, source.height);
}

window.maskwatchOnDevice = {detect, ready: () => session().then(() => true)};
