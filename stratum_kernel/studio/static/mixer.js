// The stem mixer in the browser: Web Audio mixing of the four stems on the client, so that
// solo, mute and gain change at once without re-encoding audio on the server.
//
// Audio graph: one AudioBufferSourceNode per stem -> one GainNode per stem -> a master
// GainNode -> the destination. All sources start at the same scheduled time, so the stems
// stay sample-aligned; play/seek rebuild the sources (they are one-shot by design).
//
// The solo/mute rule is the one of stratum_kernel/mixer.py: with no stem soloed every
// unmuted stem sounds; once any stem is soloed only soloed stems sound; a muted stem never
// sounds. A sounding stem's gain is 10^(dB/20).
//
// Pure parts (effectiveGains, decodeStems, createMixer) are exported for tests and other
// pages; the default export is the anywidget front end of
// stratum_kernel.mixer_widget.StemMixer.

export const STEM_NAMES = ["drums", "bass", "other", "vocals"];
export const GAIN_DB_MIN = -60;
export const GAIN_DB_MAX = 12;
// Gain changes while playing glide over about this long (seconds) to avoid clicks.
export const RAMP_S = 0.01;
// Sources start this far ahead (seconds) so that all of them start in the same quantum.
export const START_LEAD_S = 0.03;

export function dbToLinear(db) {
  return Math.pow(10, Number(db) / 20);
}

function clampDb(db) {
  const v = Number(db);
  if (!Number.isFinite(v)) return 0;
  return Math.min(GAIN_DB_MAX, Math.max(GAIN_DB_MIN, v));
}

// A complete state {stem: {gain_db, mute, solo}, master_db} for `names`, filling defaults.
export function normaliseState(state, names = STEM_NAMES) {
  const src = state || {};
  const out = { master_db: clampDb(src.master_db ?? 0) };
  for (const name of names) {
    const ch = src[name] || {};
    out[name] = { gain_db: clampDb(ch.gain_db ?? 0), mute: !!ch.mute, solo: !!ch.solo };
  }
  return out;
}

// {stem: linear gain} after mute, solo and fader (master not included).
export function effectiveGains(state, names = STEM_NAMES) {
  const st = normaliseState(state, names);
  const anySolo = names.some((n) => st[n].solo);
  const out = {};
  for (const name of names) {
    const ch = st[name];
    const on = !ch.mute && (ch.solo || !anySolo);
    out[name] = on ? dbToLinear(ch.gain_db) : 0;
  }
  return out;
}

function toArrayBuffer(data) {
  // decodeAudioData detaches its argument: always hand it a private copy.
  if (data instanceof ArrayBuffer) return data.slice(0);
  const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data);
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
}

// Decode encoded audio (WAV/FLAC bytes) per stem into AudioBuffers: {name: AudioBuffer}.
export async function decodeStems(ctx, encoded, names) {
  const out = {};
  await Promise.all(names.map(async (name, i) => {
    const data = Array.isArray(encoded) ? encoded[i] : encoded[name];
    out[name] = await ctx.decodeAudioData(toArrayBuffer(data));
  }));
  return out;
}

// The mixer's audio graph on `ctx` (an AudioContext or OfflineAudioContext).
// buffers: {stem: AudioBuffer}; state: mixer state. Options: destination (default
// ctx.destination), onEnded() called when playback reaches the end.
export function createMixer(ctx, buffers, state, options = {}) {
  const names = Object.keys(buffers);
  const master = ctx.createGain();
  master.connect(options.destination || ctx.destination);
  const nodes = {};
  for (const name of names) {
    nodes[name] = ctx.createGain();
    nodes[name].connect(master);
  }
  const duration = Math.max(0, ...names.map((n) => buffers[n].duration));
  const offline = typeof OfflineAudioContext !== "undefined" && ctx instanceof OfflineAudioContext;
  let current = normaliseState(state, names);
  let targets = {};
  let sources = [];
  let playing = false;
  let offset = 0;
  let startedAt = 0;
  let generation = 0;

  function setParam(param, value) {
    const now = ctx.currentTime;
    param.cancelScheduledValues(0);
    if (playing && !offline && ctx.state === "running") {
      param.setValueAtTime(param.value, now);
      param.linearRampToValueAtTime(value, now + RAMP_S);
    } else {
      param.value = value;
    }
  }

  function apply() {
    const eff = effectiveGains(current, names);
    targets = { ...eff, master: dbToLinear(current.master_db) };
    for (const name of names) setParam(nodes[name].gain, eff[name]);
    setParam(master.gain, targets.master);
  }

  function stopSources() {
    generation += 1;
    for (const src of sources) {
      src.onended = null;
      try { src.stop(); } catch (_err) { /* never started */ }
      src.disconnect();
    }
    sources = [];
  }

  function position() {
    if (!playing) return offset;
    return Math.min(duration, offset + Math.max(0, ctx.currentTime - startedAt));
  }

  function play(at = offset) {
    stopSources();
    offset = Math.min(Math.max(0, Number(at) || 0), duration);
    if (offset >= duration) offset = 0;
    const when = ctx.currentTime + (offline ? 0 : START_LEAD_S);
    const gen = generation;
    for (const name of names) {
      const src = ctx.createBufferSource();
      src.buffer = buffers[name];
      src.connect(nodes[name]);
      src.start(when, offset);
      sources.push(src);
    }
    // the longest stem decides when playback has ended
    const longest = sources.reduce((a, b) => (b.buffer.duration > a.buffer.duration ? b : a));
    longest.onended = () => {
      if (gen !== generation) return;
      // every other source is at most as long: let them finish on their own (stopping or
      // disconnecting them here can cut the last render quantum short)
      generation += 1;
      sources = [];
      playing = false;
      offset = duration;
      if (options.onEnded) options.onEnded();
    };
    startedAt = when;
    playing = true;
  }

  function pause() {
    if (!playing) return;
    offset = position();
    playing = false;
    stopSources();
  }

  function seek(t) {
    const target = Math.min(Math.max(0, Number(t) || 0), duration);
    if (playing) play(target);
    else offset = target;
  }

  apply();
  return {
    ctx,
    names,
    duration,
    nodes: { ...nodes, master },
    get state() { return current; },
    get playing() { return playing; },
    setState(next) { current = normaliseState(next, names); apply(); },
    play,
    pause,
    seek,
    position,
    // what the graph is set to: {stem: linear, master: linear}
    gains() { return { ...targets }; },
    // the AudioParams' current values (glide towards gains() while playing)
    nodeGains() {
      const out = { master: master.gain.value };
      for (const name of names) out[name] = nodes[name].gain.value;
      return out;
    },
    dispose() {
      pause();
      stopSources();
      for (const name of names) nodes[name].disconnect();
      master.disconnect();
    },
  };
}

// ------------------------------------------------------------------ the widget's view

const STYLE = `
.stratum-mixer { font: 12px/1.4 system-ui, sans-serif; color: #222; background: #f3f0e8;
  border-radius: 6px; padding: 8px 10px; display: inline-block; box-sizing: border-box;
  min-width: 0; max-width: 100%; }
.stratum-mixer .sm-title { font-weight: 600; margin-bottom: 4px; }
.stratum-mixer .sm-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px;
  margin: 3px 0; }
.stratum-mixer .sm-name { width: 64px; display: flex; align-items: center; gap: 4px; }
.stratum-mixer .sm-swatch { width: 10px; height: 10px; border-radius: 2px; }
.stratum-mixer button { font: inherit; min-width: 26px; padding: 1px 6px; border: 1px solid #aaa;
  border-radius: 3px; background: #fff; cursor: pointer; }
.stratum-mixer button.sm-on[data-kind=mute] { background: #d9534f; color: #fff; }
.stratum-mixer button.sm-on[data-kind=solo] { background: #e0b020; color: #000; }
.stratum-mixer input[type=range].sm-gain { flex: 1 1 90px; min-width: 70px; width: auto; }
.stratum-mixer input[type=range].sm-seek { flex: 1; }
.stratum-mixer .sm-db { width: 58px; text-align: right; font-variant-numeric: tabular-nums; }
.stratum-mixer .sm-level { width: 96px; color: #666; font-variant-numeric: tabular-nums; }
.stratum-mixer .sm-time { font-variant-numeric: tabular-nums; min-width: 110px; }
.stratum-mixer .sm-status { color: #555; min-height: 1.4em; }
.stratum-mixer .sm-silent .sm-name { opacity: 0.45; }
`;

export function formatTime(t) {
  const s = Math.max(0, Number(t) || 0);
  const m = Math.floor(s / 60);
  const rest = s - 60 * m;
  return `${m}:${rest < 10 ? "0" : ""}${rest.toFixed(1)}`;
}

function formatDb(db) {
  return `${db > 0 ? "+" : ""}${Number(db).toFixed(1)} dB`;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function render({ model, el: host }) {
  const root = el("div", { class: "stratum-mixer", "data-ready": "0" });
  root.append(el("style", {}, STYLE));
  const title = el("div", { class: "sm-title" });
  const transport = el("div", { class: "sm-row sm-transport" });
  const playBtn = el("button", { "data-kind": "play", title: "play / pause" }, "▶");
  const seek = el("input", { type: "range", class: "sm-seek", min: "0", step: "0.01",
    value: "0", "aria-label": "position" });
  const time = el("span", { class: "sm-time" }, "0:00.0 / 0:00.0");
  transport.append(playBtn, seek, time);
  const strips = el("div", { class: "sm-strips" });
  const footer = el("div", { class: "sm-row sm-footer" });
  const resetBtn = el("button", { "data-kind": "reset", title: "all faders to 0 dB" }, "reset");
  const wavBtn = el("button", { "data-kind": "export-wav" }, "export mix (WAV)");
  const fmtSel = el("select", { "data-kind": "zip-format", "aria-label": "stem format" });
  for (const f of ["flac", "wav"]) fmtSel.append(el("option", { value: f }, f.toUpperCase()));
  const zipBtn = el("button", { "data-kind": "export-zip" }, "export stems (ZIP)");
  footer.append(resetBtn, wavBtn, zipBtn, fmtSel);
  const status = el("div", { class: "sm-status" });
  root.append(title, transport, strips, footer, status);
  host.append(root);

  let names = model.get("names");
  let buffers = null;
  let ctx = null;
  let mixer = null;
  let raf = 0;
  let lastSent = -1;
  let lastSentAt = 0;
  let disposed = false;
  const controls = {};

  const currentState = () => normaliseState(model.get("state"), names);

  function shownGains() {
    if (mixer) return mixer.gains();
    const st = currentState();
    return { ...effectiveGains(st, names), master: dbToLinear(st.master_db) };
  }

  function publishGains() {
    root.dataset.gains = JSON.stringify(shownGains());
    const eff = shownGains();
    for (const name of names) {
      controls[name]?.row.classList.toggle("sm-silent", eff[name] === 0);
    }
  }

  function commitState(next) {
    model.set("state", normaliseState(next, names));
    model.save_changes();
  }

  function stripFor(name, label, color) {
    const row = el("div", { class: "sm-row sm-strip", "data-stem": name });
    const nameBox = el("span", { class: "sm-name" });
    const swatch = el("span", { class: "sm-swatch" });
    swatch.style.background = color || "transparent";
    nameBox.append(swatch, el("span", {}, label));
    const gain = el("input", { type: "range", class: "sm-gain", min: String(GAIN_DB_MIN),
      max: String(GAIN_DB_MAX), step: "0.5", value: "0", "aria-label": `${label} gain` });
    const db = el("span", { class: "sm-db" }, "0.0 dB");
    row.append(nameBox);
    const ctl = { row, gain, db };
    if (name !== "master") {
      ctl.mute = el("button", { "data-kind": "mute", title: `mute ${label}` }, "M");
      ctl.solo = el("button", { "data-kind": "solo", title: `solo ${label}` }, "S");
      ctl.level = el("span", { class: "sm-level" });
      row.append(ctl.mute, ctl.solo);
      ctl.mute.addEventListener("click", () => {
        const st = currentState();
        st[name].mute = !st[name].mute;
        commitState(st);
      });
      ctl.solo.addEventListener("click", () => {
        const st = currentState();
        st[name].solo = !st[name].solo;
        commitState(st);
      });
    }
    row.append(gain, db);
    if (ctl.level) row.append(ctl.level);
    const onGain = () => {
      const st = currentState();
      if (name === "master") st.master_db = Number(gain.value);
      else st[name].gain_db = Number(gain.value);
      commitState(st);
    };
    gain.addEventListener("input", onGain);
    gain.addEventListener("dblclick", () => { gain.value = "0"; onGain(); });
    return ctl;
  }

  function buildStrips() {
    strips.replaceChildren();
    for (const key of Object.keys(controls)) delete controls[key];
    const colors = model.get("colors") || {};
    for (const name of names) {
      controls[name] = stripFor(name, name, colors[name]);
      strips.append(controls[name].row);
    }
    controls.master = stripFor("master", "master", "");
    strips.append(controls.master.row);
  }

  function syncControls() {
    const st = currentState();
    const levels = model.get("levels") || {};
    for (const name of [...names, "master"]) {
      const ctl = controls[name];
      if (!ctl) continue;
      const db = name === "master" ? st.master_db : st[name].gain_db;
      if (document.activeElement !== ctl.gain) ctl.gain.value = String(db);
      ctl.db.textContent = formatDb(db);
      if (ctl.mute) {
        ctl.mute.classList.toggle("sm-on", st[name].mute);
        ctl.mute.setAttribute("aria-pressed", String(st[name].mute));
        ctl.solo.classList.toggle("sm-on", st[name].solo);
        ctl.solo.setAttribute("aria-pressed", String(st[name].solo));
        const lv = levels[name];
        ctl.level.textContent = lv ? `rms ${lv.rms_dbfs.toFixed(1)} dBFS` : "";
        ctl.level.title = lv ? `peak ${lv.peak_dbfs.toFixed(1)} dBFS over the track` : "";
      }
    }
    if (mixer) mixer.setState(st);
    publishGains();
  }

  function duration() {
    return mixer ? mixer.duration : model.get("duration");
  }

  function showTime(t) {
    time.textContent = `${formatTime(t)} / ${formatTime(duration())}`;
    if (document.activeElement !== seek) seek.value = String(t);
  }

  function reportPosition(t, force = false) {
    const now = performance.now();
    if (!force && now - lastSentAt < model.get("sync_ms")) return;
    lastSent = t;
    lastSentAt = now;
    model.set("position", t);
    model.save_changes();
  }

  function tick() {
    raf = 0;
    if (!mixer || !mixer.playing || disposed) return;
    const t = mixer.position();
    showTime(t);
    reportPosition(t);
    raf = requestAnimationFrame(tick);
  }

  function setPlayingUi(on) {
    playBtn.textContent = on ? "❚❚" : "▶";
    root.dataset.playing = on ? "1" : "0";
  }

  function onEnded() {
    if (model.get("loop") && mixer) {
      mixer.play(0);
      if (!raf) raf = requestAnimationFrame(tick);
      return;
    }
    setPlayingUi(false);
    reportPosition(duration(), true);
    showTime(duration());
    model.set("playing", false);
    model.save_changes();
  }

  function ensureMixer() {
    if (mixer || !buffers) return mixer;
    const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
    ctx = new Ctx();
    mixer = createMixer(ctx, buffers, currentState(), { onEnded });
    mixer.seek(model.get("position"));
    return mixer;
  }

  async function start() {
    if (!ensureMixer()) return;
    if (ctx.state !== "running") {
      try { await ctx.resume(); } catch (_err) { /* reported below */ }
    }
    if (ctx.state !== "running") {
      status.textContent = "the browser blocked audio: click ▶ to start playback";
    }
    if (!mixer.playing) mixer.play(model.get("position"));
    setPlayingUi(true);
    if (!raf) raf = requestAnimationFrame(tick);
  }

  function stop() {
    if (mixer && mixer.playing) {
      mixer.pause();
      reportPosition(mixer.position(), true);
    }
    setPlayingUi(false);
  }

  playBtn.addEventListener("click", () => {
    const on = !(mixer && mixer.playing);
    model.set("playing", on);
    model.save_changes();
    if (on) start(); else stop();
  });
  seek.addEventListener("input", () => {
    const t = Number(seek.value);
    if (mixer) mixer.seek(t);
    showTime(t);
    reportPosition(t, true);
  });
  resetBtn.addEventListener("click", () => commitState({}));
  wavBtn.addEventListener("click", () => {
    status.textContent = "exporting the mix…";
    model.send({ type: "export", what: "wav" });
  });
  zipBtn.addEventListener("click", () => {
    status.textContent = "exporting the stems…";
    model.send({ type: "export", what: "zip", format: fmtSel.value });
  });

  const handlers = {
    "change:state": syncControls,
    "change:levels": syncControls,
    "change:playing": () => {
      const want = model.get("playing");
      if (want && !(mixer && mixer.playing)) start();
      else if (!want && mixer && mixer.playing) stop();
    },
    "change:position": () => {
      const t = model.get("position");
      if (t === lastSent) return;
      const now = mixer ? mixer.position() : null;
      if (now !== null && Math.abs(now - t) <= model.get("seek_tolerance")) return;
      if (mixer) mixer.seek(t);
      showTime(t);
    },
    "change:audio": () => { load(); },
    "change:title": () => { title.textContent = model.get("title"); },
    "msg:custom": (msg, bufs) => {
      if (msg.type === "export_ready") {
        const blob = new Blob([bufs[0]], { type: msg.mime });
        const a = el("a", { href: URL.createObjectURL(blob), download: msg.name });
        root.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
        status.textContent = msg.summary;
      } else if (msg.type === "export_error") {
        status.textContent = `export failed: ${msg.message}`;
      }
    },
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);

  async function load() {
    names = model.get("names");
    if (mixer) { mixer.dispose(); mixer = null; }
    if (ctx) { ctx.close(); ctx = null; }
    buffers = null;
    root.dataset.ready = "0";
    buildStrips();
    title.textContent = model.get("title");
    seek.max = String(model.get("duration"));
    syncControls();
    showTime(model.get("position"));
    setPlayingUi(false);
    const audio = model.get("audio") || [];
    if (!audio.length) return;
    try {
      // decoding needs no running context: an offline one avoids autoplay warnings
      const decoder = new OfflineAudioContext(1, 1, model.get("sample_rate"));
      buffers = await decodeStems(decoder, audio, names);
    } catch (err) {
      status.textContent = `could not decode the stems: ${err}`;
      return;
    }
    if (disposed) return;
    root.dataset.ready = "1";
    if (model.get("playing")) start();
  }

  const debug = {
    root,
    model,
    get mixer() { return mixer; },
    get ctx() { return ctx; },
    gains: shownGains,
  };
  globalThis.__stratumMixers = [...(globalThis.__stratumMixers || []), debug];
  globalThis.__stratumMixer = debug;
  load();

  return () => {
    disposed = true;
    if (raf) cancelAnimationFrame(raf);
    for (const [event, fn] of Object.entries(handlers)) model.off(event, fn);
    if (mixer) mixer.dispose();
    if (ctx) ctx.close();
    globalThis.__stratumMixers = (globalThis.__stratumMixers || []).filter((d) => d !== debug);
    if (globalThis.__stratumMixer === debug) globalThis.__stratumMixer = undefined;
  };
}

export default { render };
