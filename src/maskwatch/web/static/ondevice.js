// On-device mode: the mobile model runs in this browser with onnxruntime-web (WebAssembly), so no
// picture leaves the device. Same steps as maskwatch/core/detector.py: resize the long side to the
// model's input size, pad to a multiple of its largest stride with its pad value, BGR float input;
// decode distances from the cell centres of its strides, threshold, NMS at the model's IoU, the class
// vote of each face's candidates, then its cascade: the crop classifier relabels the faces whose voted
// class is under classifier_below (blended, no veto; core/detector.py Detector._second_stage), and its
// rescue of the masked faces just under the threshold (Detector._rescue_mask, _rescued). Every
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
      settings = {inputSize: m.input_size, upscale: m.upscale, minInput: m.min_input, maxInput: m.max_input, threshold: m.score_threshold, nms: m.nms_threshold, voteIou: m.vote_iou, voteScore: m.vote_score, labels: m.labels,
                  strides: m.strides, padMultiple: m.pad_multiple, padValue: m.pad_value,
                  calibration: m.score_calibration};
      const opts = {executionProviders: ['wasm'], graphOptimizationLevel: 'all'};
      const s = await ort.InferenceSession.create('/models/mobile.onnx', opts);
      // a cascade without a veto (the face score stays the network's), and the rescue of the masked faces
      // just under the threshold (core/detector.py Detector._rescue_mask, _rescued) are the second stage here
      const classifiers = [];
      if ((m.classifier_settings || []).length && m.classifier_below > 0 && !(m.verify_weight > 0)) {
        for (const c of m.classifier_settings) {
          classifiers.push({s: await ort.InferenceSession.create('/models/' + c.file, opts),
                            size: m.classifier_input > 0 ? m.classifier_input : c.input_size,
                            expand: c.crop_expand, bg: c.labels.indexOf('background')});
        }
        settings.cascade = {below: m.classifier_below, belowBare: m.classifier_below_bare > 0 ? m.classifier_below_bare : m.classifier_below,
                            noMask: m.labels.indexOf('no_mask'), weight: m.classifier_weight, flip: !!m.classifier_flip, classifiers};
        const r = m.rescue_settings;
        if (r && m.rescue_band) {
          const [low, high] = m.rescue_band;
          settings.rescue = {s: await ort.InferenceSession.create('/models/' + r.file, opts),
                             size: m.rescue_input > 0 ? m.rescue_input : r.input_size, expand: r.crop_expand,
                             bg: r.labels.indexOf('background'), w: m.rescue, low, high,
                             minSide: m.rescue_min_side, minFace: m.rescue_min_face, noMask: m.labels.indexOf('no_mask'),
                             weight: m.classifier_weight};
        }
      }
      // without the rescue, the network's own threshold (network_threshold: the file's may be moved up for it)
      if (!settings.rescue) settings.threshold = m.network_threshold ?? m.score_threshold;
      return {ort, s};
    })();
  }
  return sessionPromise;
}

// the first pass's size, as the Python runtime's (core/registry.py: first_input): the picture's long
// side x upscale kept between min_input and max_input, or the fixed input_size; no zoom, no tiles here
function firstInput(w, h, {inputSize, upscale, minInput, maxInput}) {
  if (upscale === null || upscale === undefined) return inputSize;
  return Math.round(Math.min(Math.max(Math.max(w, h) * upscale, minInput), maxInput));
}

function preprocess(source, settings) {
  const {padMultiple, padValue} = settings;
  const w0 = source.width, h0 = source.height;
  const scale = firstInput(w0, h0, settings) / Math.max(w0, h0);
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

function intersection(a, b) {
  return Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
}

function iou(a, b) {
  const inter = intersection(a, b);
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

function decode(scores, dists, probs, pw, ph, scale, {threshold: thr, nms: nmsIou, voteIou, voteScore, strides, calibration}, w0, h0) {
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
  return keep.map(c => ({box: c.box, p: vote(c, voters, voteIou), score: c.score}));
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

// square crops (BGR planes, size x size) around the boxes, grown by expand, their edges replicated
// where they leave the picture (core/detector.py face_crops)
function faceCrops(source, boxes, size, expand) {
  const W = source.width, H = source.height, n = size * size;
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const data = new Float32Array(boxes.length * 3 * n);
  boxes.forEach((b, i) => {
    const side = Math.max(b[2] - b[0], b[3] - b[1]) * expand;
    const x0 = (b[0] + b[2]) / 2 - side / 2, y0 = (b[1] + b[3]) / 2 - side / 2, k = size / side;
    // nine parts: the picture inside the square, and each side outside it stretched from its edge row or column
    const spans = (lo, hi, len) => [[lo, Math.min(hi, 0), 0, 1], [Math.max(lo, 0), Math.min(hi, len), null, null], [Math.max(lo, len), hi, len - 1, 1]];
    ctx.clearRect(0, 0, size, size);
    for (const [ya, yb, ys, yh] of spans(y0, y0 + side, H)) {
      for (const [xa, xb, xs, xw] of spans(x0, x0 + side, W)) {
        if (xb <= xa || yb <= ya) continue;
        ctx.drawImage(source, xs ?? xa, ys ?? ya, xw ?? xb - xa, yh ?? yb - ya, (xa - x0) * k, (ya - y0) * k, (xb - xa) * k, (yb - ya) * k);
      }
    }
    const rgba = ctx.getImageData(0, 0, size, size).data, o = i * 3 * n;
    for (let j = 0; j < n; j++) {
      data[o + j] = rgba[4 * j + 2];
      data[o + n + j] = rgba[4 * j + 1];
      data[o + 2 * n + j] = rgba[4 * j];
    }
  });
  return data;
}

// which faces the cascade asks about: the vote's top class under classifier_below, or under
// classifier_below_bare for the faces voted no_mask (core/detector.py Detector._unsure)
function isUnsure(f, {below, belowBare, noMask}) {
  const top = Math.max(...f.p);
  return top < (f.p.indexOf(top) === noMask ? belowBare : below);
}

// the cascade: each crop classifier's mask-class probabilities (background dropped, the rest
// renormalised; mirrored crops averaged in when the model says so), averaged over the classifiers and
// blended with the vote's by classifier_weight, for the faces the vote is unsure of
async function relabel(ort, source, faces, cascade) {
  const {weight, flip, classifiers} = cascade;
  const unsure = faces.filter(f => isUnsure(f, cascade));
  if (!unsure.length) return;
  const sum = unsure.map(() => [0, 0, 0]);
  for (const c of classifiers) {
    let data = faceCrops(source, unsure.map(f => f.box), c.size, c.expand);
    const m = unsure.length, n = c.size * c.size, per = 3 * n;
    if (flip) {  // the mirrored crops follow the originals, as in CropModel._run
      const both = new Float32Array(2 * data.length);
      both.set(data);
      for (let i = 0; i < m * 3; i++) {
        for (let y = 0; y < c.size; y++) {
          for (let x = 0; x < c.size; x++) both[data.length + i * n + y * c.size + x] = data[i * n + y * c.size + (c.size - 1 - x)];
        }
      }
      data = both;
    }
    const rows = data.length / per;
    const out = await c.s.run({[c.s.inputNames[0]]: new ort.Tensor('float32', data, [rows, 3, c.size, c.size])});
    const p = out[c.s.outputNames[0]].data, k = p.length / rows;
    unsure.forEach((f, i) => {
      const q = [];
      for (let j = 0; j < k; j++) if (j !== c.bg) q.push(flip ? (p[i * k + j] + p[(i + m) * k + j]) / 2 : p[i * k + j]);
      const t = Math.max(q.reduce((u, v) => u + v, 0), 1e-9);
      for (let j = 0; j < 3; j++) sum[i][j] += q[j] / t / classifiers.length;
    });
  }
  unsure.forEach((f, i) => {
    f.p = f.p.map((v, j) => weight * sum[i][j] + (1 - weight) * v);
    f.classified = true;
  });
}

// the share of box a lying inside box b
function inside(a, b) {
  return intersection(a, b) / Math.max((a[2] - a[0]) * (a[3] - a[1]), 1e-9);
}

// the rescue: the faces of the band (just under the threshold, voted mask or incorrect, big enough, not
// a piece of a face over the threshold) shown to the rescue classifier; score max(s, s^(1-w) P(face)^w)
// where P(face) reaches minFace, and its classes blended in where the vote is unsure
function rescueBand(faces, {low, high, minSide, noMask}) {
  const sure = faces.filter(f => f.score >= high);
  return faces.filter(f => f.score >= low && f.score < high
    && Math.min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= minSide
    && f.p.indexOf(Math.max(...f.p)) !== noMask && sure.every(o => inside(f.box, o.box) < 0.7));
}

async function rescue(ort, source, look, r) {
  if (!look.length) return;
  const data = faceCrops(source, look.map(f => f.box), r.size, r.expand);
  const out = await r.s.run({[r.s.inputNames[0]]: new ort.Tensor('float32', data, [look.length, 3, r.size, r.size])});
  const p = out[r.s.outputNames[0]].data, k = p.length / look.length;
  look.forEach((f, i) => {
    const row = Array.from(p.slice(i * k, (i + 1) * k));
    const face = Math.min(Math.max(1 - row[r.bg], 1e-6), 1);
    const q = row.filter((_, j) => j !== r.bg), t = Math.max(q.reduce((u, v) => u + v, 0), 1e-9);
    if (face >= r.minFace) f.score = Math.max(f.score, Math.pow(f.score, 1 - r.w) * Math.pow(face, r.w));
    if (isUnsure(f, settings.cascade)) {
      f.p = f.p.map((v, j) => r.weight * q[j] / t + (1 - r.weight) * v);
      f.classified = true;
    }
    f.rescued = true;
  });
}

async function detect(source) {
  const {ort, s} = await session();
  const {data, pw, ph, scale} = preprocess(source, settings);
  const feeds = {[s.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, ph, pw])};
  const out = await s.run(feeds);
  const [scores, boxes, classes] = s.outputNames.map(n => out[n].data);
  const r = settings.rescue;
  // with the rescue, the candidates are kept down to its band, then the rest under the threshold dropped
  let faces = decode(scores, boxes, classes, pw, ph, scale, r ? {...settings, threshold: r.low} : settings, source.width, source.height);
  const look = r ? rescueBand(faces, r) : [];
  if (r) faces = faces.filter(f => f.score >= settings.threshold || look.includes(f));
  if (settings.cascade) await relabel(ort, source, faces.filter(f => !look.includes(f)), settings.cascade);
  if (r) {
    await rescue(ort, source, look, r);
    faces = faces.filter(f => f.score >= settings.threshold).sort((u, v) => v.score - u.score);
  }
  return faces.map(({box, p, score, classified, rescued}) => {
    const k = p.indexOf(Math.max(...p));
    return {box, label: settings.labels[k], confidence: p[k], score, classified: !!classified, rescued: !!rescued};
  });
}

window.maskwatchOnDevice = {detect, ready: () => session().then(() => true)};
