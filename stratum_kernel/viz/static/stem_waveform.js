// The pixel-exact stem waveform for the browser canvas: an operation-for-operation port of
// stratum_kernel/viz/waveform.py (see its module docstring for the rule). Every quantity
// is an integer held in a double; products stay below 2^53, and integer division is
// floor(a / b) corrected by one step, so the pixels equal the Python renderer's exactly.
//
// Also the anywidget front end of stratum_kernel.viz.widgets.StemWaveformView: data is
// sent once (uint16 level units), parameters arrive through the `params` trait and are
// mirrored in localStorage.

export const Q_ONE = 32768;

export function parseHex(color) {
  const m = /^#?([0-9a-fA-F]{6})$/.exec(String(color).trim());
  if (!m) throw new Error(`colour ${color} is not a hex colour like '#6b3fa0'`);
  const h = m[1];
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

export function gainCenti(gain) {
  return Math.floor(Number(gain) * 100 + 0.5);
}

// floor(a / b) for non-negative integers a, b > 0, exact even where a / b rounds.
function idiv(a, b) {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q;
}

export function blendPercent(fg, bg, p) {
  return Math.floor((fg * p + bg * (100 - p) + 50) / 100);
}

export function percentToAlpha(p) {
  return Math.floor((p * 255 + 50) / 100);
}

export function timeToColumn(t, t0, t1, width) {
  if (t === null || t === undefined || !(t1 > t0) || width <= 0) return -1;
  const x = Math.floor((t - t0) / (t1 - t0) * width);
  return x < 0 || x >= width ? -1 : x;
}

export function referenceUnits(levels, nStems, width) {
  let best = 0;
  for (let c = 0; c < width; c++) {
    let tot = 0;
    for (let s = 0; s < nStems; s++) tot += levels[s * width + c];
    if (tot > best) best = tot;
  }
  return Math.max(1, best);
}

// levels: integer array [nStems * width] (stem-major, inner stem first).
// Returns Float64Array [nStems * width]: pixels of each stem on one side of each column.
export function stemPixelCounts(levels, nStems, width, half, smoothing, gain, referenceQ) {
  const counts = new Float64Array(nStems * width);
  const ref = referenceQ === null || referenceQ === undefined
    ? referenceUnits(levels, nStems, width) : referenceQ;
  if (ref <= 0 || half <= 0 || width === 0) return counts;
  const r = smoothing;
  const d = 2 * r + 1;
  const g = gainCenti(gain);
  // box sums with edge columns repeated, via prefix sums over the padded row
  const sums = new Float64Array(nStems * width);
  for (let s = 0; s < nStems; s++) {
    const base = s * width;
    const first = levels[base];
    const last = levels[base + width - 1];
    const prefix = new Float64Array(width + 2 * r + 1);
    for (let i = 0; i < width + 2 * r; i++) {
      const j = i - r;
      const v = j < 0 ? first : j >= width ? last : levels[base + j];
      prefix[i + 1] = prefix[i] + v;
    }
    for (let c = 0; c < width; c++) sums[base + c] = prefix[c + d] - prefix[c];
  }
  const den = 2 * ref * d * 100;
  const num = new Float64Array(nStems);
  const rem = new Float64Array(nStems);
  for (let c = 0; c < width; c++) {
    let tot = 0;
    for (let s = 0; s < nStems; s++) tot += sums[s * width + c];
    if (tot === 0) continue;
    const total = Math.min(half, idiv(2 * tot * g * half + ref * d * 100, den));
    let used = 0;
    for (let s = 0; s < nStems; s++) {
      num[s] = total * sums[s * width + c];
      const f = idiv(num[s], tot);
      rem[s] = num[s] - f * tot;
      counts[s * width + c] = f;
      used += f;
    }
    const left = total - used;
    for (let s = 0; s < nStems; s++) {
      let rank = 0;
      for (let t = 0; t < nStems; t++) {
        if (rem[t] > rem[s] || (rem[t] === rem[s] && t < s)) rank += 1;
      }
      if (rank < left) counts[s * width + c] += 1;
    }
  }
  return counts;
}

// Returns Uint8ClampedArray [height * width * 4] (RGBA, row-major), equal to the Python
// renderer's render_stem_waveform(..., alpha=True).
export function renderStemWaveform(levels, nStems, width, height, params, referenceQ,
                                   playheadX, names) {
  const mirror = params.mirror !== false;
  const half = mirror ? Math.floor((height + 1) / 2) : height;
  const counts = stemPixelCounts(levels, nStems, width, half, params.smoothing | 0,
                                 params.gain, referenceQ);
  const bg = parseHex(params.background);
  const p = params.opacity | 0;
  const palette = [];
  for (let s = 0; s < nStems; s++) {
    const fg = parseHex(params[names[s]]);
    palette.push([blendPercent(fg[0], bg[0], p), blendPercent(fg[1], bg[1], p),
                  blendPercent(fg[2], bg[2], p), 255]);
  }
  const bgOpacity = params.background_opacity === undefined ? 100 : params.background_opacity;
  palette.push([bg[0], bg[1], bg[2], percentToAlpha(bgOpacity)]);
  const out = new Uint8ClampedArray(width * height * 4);
  const cum = new Float64Array(nStems);
  for (let c = 0; c < width; c++) {
    let acc = 0;
    for (let s = 0; s < nStems; s++) {
      acc += counts[s * width + c];
      cum[s] = acc;
    }
    let s = 0;
    for (let k = 0; k < half; k++) {
      while (s < nStems && k >= cum[s]) s += 1;
      const col = palette[s];
      const rows = mirror ? [Math.floor((height - 1) / 2) - k, Math.floor(height / 2) + k]
                          : [height - 1 - k];
      for (const y of rows) {
        if (y < 0 || y >= height) continue;
        const o = (y * width + c) * 4;
        out[o] = col[0]; out[o + 1] = col[1]; out[o + 2] = col[2]; out[o + 3] = col[3];
      }
    }
  }
  if (playheadX !== null && playheadX !== undefined && playheadX >= 0 && playheadX < width) {
    const ph = parseHex(params.playhead);
    for (let y = 0; y < height; y++) {
      const o = (y * width + playheadX) * 4;
      out[o] = ph[0]; out[o + 1] = ph[1]; out[o + 2] = ph[2]; out[o + 3] = 255;
    }
  }
  return out;
}

// ---------------------------------------------------------------- anywidget front end

function levelsFrom(model) {
  const raw = model.get("levels");
  const view = raw instanceof DataView ? raw
    : new DataView(raw.buffer ?? raw, raw.byteOffset ?? 0, raw.byteLength);
  const n = Math.floor(view.byteLength / 2);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}

function readStored(key) {
  try {
    const text = globalThis.localStorage?.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch (_err) {
    return null;
  }
}

function writeStored(key, params) {
  try {
    globalThis.localStorage?.setItem(key, JSON.stringify(params));
  } catch (_err) {
    // storage may be disabled (private mode); the settings file still holds the values
  }
}

function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "stratum-stem-waveform";
  const title = document.createElement("div");
  title.style.font = "12px sans-serif";
  title.style.margin = "2px 0";
  const canvas = document.createElement("canvas");
  canvas.style.imageRendering = "pixelated";
  canvas.style.display = "block";
  wrap.append(title, canvas);
  el.appendChild(wrap);
  let levels = levelsFrom(model);

  const draw = () => {
    const width = model.get("width");
    const height = model.get("height");
    const params = model.get("params");
    const names = model.get("names");
    title.textContent = model.get("title");
    title.style.display = model.get("title") ? "block" : "none";
    canvas.width = width;
    canvas.height = height;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const albumRef = model.get("album_reference_q");
    const ref = params.album_relative && albumRef > 0 ? albumRef : model.get("reference_q");
    const x = timeToColumn(model.get("playhead"), model.get("t0"), model.get("t1"), width);
    const rgba = renderStemWaveform(levels, names.length, width, height, params, ref, x, names);
    canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
    canvas.dataset.drawn = String(Number(canvas.dataset.drawn || 0) + 1);
  };

  const key = model.get("storage_key");
  const stored = key ? readStored(key) : null;
  if (stored && model.get("adopt_local")) {
    model.set("params", { ...model.get("params"), ...stored });
    model.save_changes();
  }
  model.on("change:levels", () => { levels = levelsFrom(model); draw(); });
  model.on("change:params", () => {
    if (key) writeStored(key, model.get("params"));
    draw();
  });
  for (const name of ["width", "height", "reference_q", "album_reference_q", "playhead",
                      "t0", "t1", "title"]) {
    model.on(`change:${name}`, draw);
  }
  if (key) writeStored(key, model.get("params"));
  draw();
}

export default { render };
