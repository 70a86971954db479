// gancompress demo page: drawing, live scheduling (latest input wins, one request in flight per
// model, unchanged inputs skipped), label-map painting, benchmark and sub-network slider.
// Plain JavaScript, no dependencies; talks only to its own server (same origin).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    info: null, width: 256, height: 256, labelMode: false, tool: "pen", drawing: false,
    last: null, undo: [], redo: [], labels: null, label: 0, palette: [], models: {}, version: 0,
  };
  const MAX_UNDO = 50;
  const canvas = $("input-canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });

  function status(text, ok) {
    const el = $("status");
    el.textContent = text || "";
    el.className = ok ? "ok" : "";
  }

  function formatCount(n) {
    if (n === null || n === undefined) return "-";
    const units = [[1e9, "G"], [1e6, "M"], [1e3, "K"]];
    for (const [v, u] of units) if (Math.abs(n) >= v) return (n / v).toFixed(2) + u;
    return String(n);
  }

  function formatQuality(q) {
    if (!q || !q.values) return ["quality", "-"];
    const parts = [];
    for (const [k, v] of Object.entries(q.values)) {
      if (v === null || v === undefined) continue;
      parts.push(k.toUpperCase() + " " + (Math.abs(v) < 10 ? v.toFixed(4) : v.toFixed(2)));
    }
    const label = q.reference ? "quality vs " + q.reference : "quality";
    return [label, parts.length ? parts.join(", ") : "reference"];
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }

  // ---------------------------------------------------------------------------------------
  // Input: image mode paints on the canvas; label mode paints indices into state.labels.

  function clearInput() {
    if (state.labelMode) {
      state.labels.fill(0);
      renderLabels();
    } else {
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, state.width, state.height);
    }
  }

  function snapshot() {
    return state.labelMode ? state.labels.slice() : ctx.getImageData(0, 0, state.width, state.height);
  }

  function restore(snap) {
    if (state.labelMode) { state.labels.set(snap); renderLabels(); } else ctx.putImageData(snap, 0, 0);
  }

  function pushUndo() {
    state.undo.push(snapshot());
    if (state.undo.length > MAX_UNDO) state.undo.shift();
    state.redo = [];
    updateUndoButtons();
  }

  function updateUndoButtons() {
    $("undo").disabled = state.undo.length === 0;
    $("redo").disabled = state.redo.length === 0;
  }

  function renderLabels() {
    const img = ctx.createImageData(state.width, state.height);
    const px = img.data, labels = state.labels, pal = state.palette;
    const edges = $("show-edges").checked ? edgeMap(labels) : null;
    for (let i = 0; i < labels.length; i++) {
      const c = pal[labels[i]] || [0, 0, 0];
      const e = edges && edges[i];
      px[4 * i] = e ? 255 : c[0]; px[4 * i + 1] = e ? 255 : c[1]; px[4 * i + 2] = e ? 255 : c[2];
      px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // Instance edges as the server derives them: a pixel differing from a 4-neighbour.
  function edgeMap(labels) {
    const w = state.width, h = state.height, out = new Uint8Array(labels.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x, v = labels[i];
        if (x + 1 < w && labels[i + 1] !== v) { out[i] = 1; out[i + 1] = 1; }
        if (y + 1 < h && labels[i + w] !== v) { out[i] = 1; out[i + w] = 1; }
      }
    }
    return out;
  }

  // A filled disc of label indices (no anti-aliasing: every pixel gets exactly one label).
  function stampLabel(cx, cy, radius, value) {
    const w = state.width, h = state.height, r2 = radius * radius;
    const x0 = Math.max(0, Math.floor(cx - radius)), x1 = Math.min(w - 1, Math.ceil(cx + radius));
    const y0 = Math.max(0, Math.floor(cy - radius)), y1 = Math.min(h - 1, Math.ceil(cy + radius));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        if (dx * dx + dy * dy <= r2 || (radius < 1 && x === Math.floor(cx) && y === Math.floor(cy))) {
          state.labels[y * w + x] = value;
        }
      }
    }
  }

  function floodFill(x, y, value) {
    const w = state.width, h = state.height, labels = state.labels;
    const target = labels[y * w + x];
    if (target === value) return;
    const stack = [y * w + x];
    while (stack.length) {
      const i = stack.pop();
      if (labels[i] !== target) continue;
      labels[i] = value;
      const px = i % w, py = (i - px) / w;
      if (px > 0) stack.push(i - 1);
      if (px + 1 < w) stack.push(i + 1);
      if (py > 0) stack.push(i - w);
      if (py + 1 < h) stack.push(i + w);
    }
  }

  function canvasPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * state.width / rect.width,
            (event.clientY - rect.top) * state.height / rect.height];
  }

  function brushRadius() {
    return Math.max(0.5, Number($("brush-size").value) / 2);
  }

  function paintSegment(from, to) {
    const radius = brushRadius();
    if (state.labelMode) {
      const value = state.tool === "eraser" ? 0 : state.label;
      const dist = Math.hypot(to[0] - from[0], to[1] - from[1]);
      const steps = Math.max(1, Math.ceil(dist));
      for (let s = 0; s <= steps; s++) {
        const t = s / steps;
        stampLabel(from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t, radius, value);
      }
      renderLabels();
    } else {
      ctx.strokeStyle = state.tool === "eraser" ? "#ffffff" : $("pen-color").value;
      ctx.lineWidth = radius * 2;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(from[0], from[1]);
      ctx.lineTo(to[0], to[1]);
      ctx.stroke();
    }
    state.version++;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    const p = canvasPoint(event);
    pushUndo();
    if (state.labelMode && state.tool === "fill") {
      const x = Math.min(state.width - 1, Math.max(0, Math.floor(p[0])));
      const y = Math.min(state.height - 1, Math.max(0, Math.floor(p[1])));
      floodFill(x, y, state.label);
      renderLabels();
      state.version++;
      changed(true);
      return;
    }
    state.drawing = true;
    state.last = p;
    canvas.setPointerCapture(event.pointerId);
    paintSegment(p, p);
    changed(false);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) {
      const p = canvasPoint(e);
      paintSegment(state.last, p);
      state.last = p;
    }
    changed(false);
  });

  function endStroke(event) {
    if (!state.drawing) return;
    state.drawing = false;
    if (canvas.hasPointerCapture && canvas.hasPointerCapture(event.pointerId)) {
      canvas.releasePointerCapture(event.pointerId);
    }
    changed(true);
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  // ---------------------------------------------------------------------------------------
  // Scheduling: every model has at most one request in flight; when it returns, the newest
  // input is sent if it differs from what that model last received.

  function mode() { return $("mode").value; }

  function changed(strokeEnded) {
    const m = mode();
    if (m === "manual") return;
    if (m === "stroke" && !strokeEnded && !$("incremental").checked) return;
    schedule(false);
  }

  function inputBytes() {
    if (state.labelMode) return { body: state.labels.slice(), type: "application/x-labels" };
    const data = ctx.getImageData(0, 0, state.width, state.height).data;
    return { body: new Uint8Array(data.buffer.slice(0)), type: "application/x-rgba" };
  }

  function fnv1a(bytes) {
    let h = 0x811c9dc5;
    const words = new Uint32Array(bytes.buffer, 0, bytes.byteLength >> 2);
    for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
    for (let i = words.length * 4; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
    return (h >>> 0).toString(16) + ":" + bytes.length;
  }

  let cached = { version: -1, input: null, hash: null };
  function currentInput() {
    if (cached.version !== state.version) {
      const input = inputBytes();
      cached = { version: state.version, input, hash: fnv1a(input.body) };
    }
    return cached;
  }

  function schedule(force) {
    for (const key of Object.keys(state.models)) send(state.models[key], force);
  }

  // Incremental inference: while a stroke is drawn, a model that supports it recomputes only
  // what changed (a preview); when the stroke ends, a dense pass replaces the preview, so what
  // stays on screen is never approximate.
  function incremental(model) {
    return $("incremental").checked && state.drawing && model.info && model.info.incremental;
  }

  async function send(model, force) {
    if (model.busy) { model.pending = model.pending || force; return; }
    const cur = currentInput();
    const inc = incremental(model);
    if (!force && cur.hash === model.sentHash && (inc || !model.approximate)) return;
    model.busy = true;
    model.sentHash = cur.hash;
    const start = performance.now();
    try {
      const url = "/api/run/" + encodeURIComponent(model.key) + "?format=rgba&w=" + state.width +
                  "&h=" + state.height + "&incremental=" + (inc ? "1" : "0");
      const response = await fetch(url, { method: "POST", body: cur.input.body,
                                           headers: { "Content-Type": cur.input.type } });
      if (!response.ok) throw new Error(await errorText(response));
      const w = Number(response.headers.get("X-Width")), h = Number(response.headers.get("X-Height"));
      const pixels = new Uint8ClampedArray(await response.arrayBuffer());
      const out = model.canvas;
      if (out.width !== w || out.height !== h) { out.width = w; out.height = h; }
      out.getContext("2d").putImageData(new ImageData(pixels, w, h), 0, 0);
      const roundTrip = performance.now() - start;
      const serverMs = Number(response.headers.get("X-Inference-Ms"));
      const now = performance.now();
      model.frames.push(now);
      while (model.frames.length && now - model.frames[0] > 1000) model.frames.shift();
      model.count++;
      model.el.querySelector(".server-ms").textContent = serverMs.toFixed(1);
      const wasIncremental = response.headers.get("X-Incremental") === "1";
      model.approximate = wasIncremental;
      model.el.dataset.approximate = wasIncremental ? "1" : "0";
      const changedArea = response.headers.get("X-Changed");
      if (wasIncremental) {
        model.el.querySelector(".inc-ms").textContent = serverMs.toFixed(1);
        model.el.dataset.incrementalMs = serverMs.toFixed(3);
      }
      if (changedArea) {
        model.el.querySelector(".changed").textContent = (100 * Number(changedArea)).toFixed(2) + " %";
        model.el.dataset.changed = changedArea;
      }
      const denseMs = response.headers.get("X-Dense-Ms");
      if (denseMs) model.el.querySelector(".dense-ms").textContent = Number(denseMs).toFixed(1);
      model.el.querySelector(".rt-ms").textContent = roundTrip.toFixed(1);
      model.el.querySelector(".fps").textContent = String(model.frames.length);
      model.el.querySelector(".backend").textContent = response.headers.get("X-Backend") || "-";
      model.el.dataset.frames = String(model.count);
      model.el.dataset.serverMs = serverMs.toFixed(3);
      model.el.dataset.roundTripMs = roundTrip.toFixed(3);
    } catch (err) {
      status(model.label + ": " + err.message);
      model.sentHash = null;
      model.el.dataset.errors = String(Number(model.el.dataset.errors || 0) + 1);
      model.busy = false;
      return;  // no automatic retry loop on errors; the next change tries again
    }
    model.busy = false;
    const again = model.pending;
    model.pending = false;
    const m = mode();
    if (again || m === "live" || (m === "stroke" && !state.drawing) || model.approximate &&
        !state.drawing) send(model, again);
  }

  // ---------------------------------------------------------------------------------------
  // Panes, palette, benchmark, sub-networks

  function fillPane(model, info) {
    model.info = info;
    model.label = info.label;
    model.el.querySelector(".name").textContent = info.label +
      (info.config && info.label.indexOf(info.config) < 0 ? " " + info.config : "");
    model.el.querySelector(".macs").textContent = formatCount(info.macs);
    model.el.querySelector(".params").textContent = formatCount(info.params);
    const [qLabel, qText] = formatQuality(info.quality);
    model.el.querySelector(".quality-label").textContent = "quality";
    model.el.querySelector(".quality").textContent = qText;
    model.el.querySelector(".quality").title = qLabel +
      (info.quality && info.quality.images ? " on " + info.quality.images + " held-out images" : "");
    model.el.querySelector(".quality-ref").textContent =
      (info.quality && info.quality.reference) || "-";
    model.el.querySelector(".backend").textContent = info.backend + " (" + info.threads + " threads)";
  }

  function addPane(info) {
    const node = $("pane-template").content.firstElementChild.cloneNode(true);
    node.id = "pane-" + info.key;
    node.dataset.key = info.key;
    node.dataset.frames = "0";
    const out = node.querySelector("canvas");
    out.id = "out-" + info.key;
    out.width = state.width; out.height = state.height;
    const dl = node.querySelector(".download");
    dl.dataset.target = out.id;
    $("panes").appendChild(node);
    const model = { key: info.key, el: node, canvas: out, busy: false, pending: false,
                    sentHash: null, frames: [], count: 0, label: info.label };
    state.models[info.key] = model;
    fillPane(model, info);
  }

  function download(targetId) {
    const target = $(targetId);
    const name = targetId === "input-canvas" ? "input" : targetId.replace(/^out-/, "");
    target.toBlob((blob) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name + ".png";
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }, "image/png");
  }

  function setupPalette(palette) {
    state.palette = palette.map((p) => p.color);
    const box = $("swatches");
    palette.forEach((p, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "swatch" + (i === state.label ? " active" : "");
      b.title = p.index + ": " + p.name;
      b.setAttribute("aria-label", p.name);
      b.dataset.index = String(p.index);
      b.style.background = "rgb(" + p.color.join(",") + ")";
      b.addEventListener("click", () => {
        state.label = p.index;
        for (const s of box.children) s.classList.toggle("active", s === b);
        if (state.tool === "eraser") setTool("pen");
      });
      box.appendChild(b);
    });
    // Paint something other than the background class first.
    const first = palette.findIndex((p) => p.color.some((c) => c > 0));
    if (first > 0) box.children[first].click();
  }

  function setTool(tool) {
    state.tool = tool;
    for (const t of ["pen", "eraser", "fill"]) {
      const b = $("tool-" + t);
      b.classList.toggle("active", t === tool);
      b.setAttribute("aria-pressed", String(t === tool));
    }
  }

  async function benchmark() {
    const button = $("benchmark");
    button.disabled = true;
    const runs = Math.max(1, Math.min(50, Number($("bench-runs").value) || 10));
    status("benchmarking each model alone (" + runs + " runs) ...", true);
    try {
      const response = await fetch("/api/benchmark?runs=" + runs, { method: "POST" });
      if (!response.ok) throw new Error(await errorText(response));
      const result = await response.json();
      const body = $("bench-result").querySelector("tbody");
      body.textContent = "";
      for (const [key, r] of Object.entries(result.models)) {
        const tr = document.createElement("tr");
        tr.dataset.key = key;
        const cells = [state.models[key] ? state.models[key].label : key, r.backend,
          r.median_ms.toFixed(1), r.p10_ms.toFixed(1) + "\u2013" + r.p90_ms.toFixed(1),
          r.speedup ? r.speedup.toFixed(2) + "\u00d7" : "-",
          r.mac_ratio ? r.mac_ratio.toFixed(2) + "\u00d7" : "-"];
        for (const c of cells) {
          const td = document.createElement("td");
          td.textContent = c;
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
      $("bench").classList.remove("hidden");
      $("bench-result").dataset.done = String(Number($("bench-result").dataset.done || 0) + 1);
      status("benchmark done (relative to " + result.reference + ")", true);
    } catch (err) {
      status("benchmark: " + err.message);
    } finally {
      button.disabled = false;
    }
  }

  function setupSubnets(points) {
    const usable = points.filter((p) => p.available);
    if (!usable.length || !state.models.compact) return;
    const slider = $("subnet-slider");
    slider.max = String(usable.length - 1);
    const chosen = Math.max(0, usable.findIndex((p) => p.chosen));
    slider.value = String(chosen);
    const describe = () => {
      const p = usable[Number(slider.value)];
      const score = p.score === null || p.score === undefined ? "" :
        ", " + (p.metric || "score") + " " + Number(p.score).toFixed(4);
      $("subnet-label").textContent = p.config + " (" + formatCount(p.macs) + " MACs" + score +
        (p.chosen ? ", the run's choice" : "") + ")";
    };
    describe();
    slider.addEventListener("input", describe);
    slider.addEventListener("change", async () => {
      const p = usable[Number(slider.value)];
      describe();
      slider.disabled = true;
      status("loading sub-network " + p.config + " ...", true);
      try {
        const response = await fetch("/api/subnet", { method: "POST", body: JSON.stringify(
          { config: p.config }), headers: { "Content-Type": "application/json" } });
        if (!response.ok) throw new Error(await errorText(response));
        const result = await response.json();
        const model = state.models.compact;
        fillPane(model, result.model);
        model.el.dataset.config = p.config;
        status("showing sub-network " + p.config, true);
        send(model, true);
      } catch (err) {
        status("sub-network: " + err.message);
      } finally {
        slider.disabled = false;
      }
    });
    $("subnet").classList.remove("hidden");
  }

  async function loadInput(response) {
    if (state.labelMode) {
      const bytes = new Uint8Array(await response.arrayBuffer());
      pushUndo();
      state.labels.set(bytes.subarray(0, state.labels.length));
      renderLabels();
    } else {
      const bitmap = await createImageBitmap(await response.blob());
      pushUndo();
      ctx.drawImage(bitmap, 0, 0, state.width, state.height);
    }
    state.version++;
    changed(true);
  }

  async function uploadFile(file) {
    if (!file) return;
    status("uploading " + file.name + " ...", true);
    try {
      const response = await fetch("/api/upload", { method: "POST", body: file,
        headers: { "Content-Type": file.type || "application/octet-stream" } });
      if (!response.ok) throw new Error(await errorText(response));
      await loadInput(response);
      status("loaded " + file.name, true);
    } catch (err) {
      status("upload: " + err.message);
    }
  }

  async function example() {
    try {
      const response = await fetch("/api/example");
      if (!response.ok) throw new Error(await errorText(response));
      await loadInput(response);
      status("random example from the run's held-out images", true);
    } catch (err) {
      status("example: " + err.message);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Start

  function wire() {
    $("tool-pen").addEventListener("click", () => setTool("pen"));
    $("tool-eraser").addEventListener("click", () => setTool("eraser"));
    $("tool-fill").addEventListener("click", () => setTool("fill"));
    $("brush-size").addEventListener("input", () => {
      $("brush-size-value").textContent = $("brush-size").value;
    });
    $("clear").addEventListener("click", () => { pushUndo(); clearInput(); state.version++; changed(true); });
    $("undo").addEventListener("click", () => {
      if (!state.undo.length) return;
      state.redo.push(snapshot());
      restore(state.undo.pop());
      updateUndoButtons();
      state.version++;
      changed(true);
    });
    $("redo").addEventListener("click", () => {
      if (!state.redo.length) return;
      state.undo.push(snapshot());
      restore(state.redo.pop());
      updateUndoButtons();
      state.version++;
      changed(true);
    });
    $("run-now").addEventListener("click", () => schedule(true));
    $("benchmark").addEventListener("click", benchmark);
    $("upload").addEventListener("change", (e) => { uploadFile(e.target.files[0]); e.target.value = ""; });
    $("example").addEventListener("click", example);
    $("show-edges").addEventListener("change", renderLabels);
    for (const b of document.querySelectorAll(".download")) {
      b.addEventListener("click", () => download(b.dataset.target));
    }
    const drop = canvas;
    for (const ev of ["dragenter", "dragover"]) {
      document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("dragging"); });
    }
    for (const ev of ["dragleave", "drop"]) {
      document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("dragging"); });
    }
    document.addEventListener("drop", (e) => {
      const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      uploadFile(file);
    });
  }

  async function start() {
    wire();
    let info;
    try {
      const response = await fetch("/api/info");
      if (!response.ok) throw new Error(await errorText(response));
      info = await response.json();
    } catch (err) {
      status("cannot reach the demo server: " + err.message);
      return;
    }
    state.info = info;
    state.height = info.size[0];
    state.width = info.size[1];
    state.labelMode = info.mode === "label";
    canvas.width = state.width;
    canvas.height = state.height;
    const run = info.run;
    $("run-info").textContent = (run ? "run " + run.folder + (run.config ? ", compact " + run.config : "") +
      (run.budget ? ", budget " + run.budget : "") + "; " : "") + info.models.length + " models, input " +
      state.height + "x" + state.width + (state.labelMode ? " label map" : "");
    if (state.labelMode) {
      state.labels = new Uint8Array(state.width * state.height);
      $("palette").classList.remove("hidden");
      $("tool-fill").classList.remove("hidden");
      $("pen-color").parentElement.classList.add("hidden");
      $("show-edges").checked = !!info.edges;
      setupPalette(info.palette);
      // label maps: dense on stroke end, incremental previews while a stroke is drawn
      $("mode").value = "stroke";
    }
    if (!info.examples) $("example").classList.add("hidden");
    clearInput();
    for (const m of info.models) addPane(m);
    setupSubnets(info.pareto || []);
    document.body.dataset.ready = "1";
    status("ready: draw on the input", true);
    state.version++;
    schedule(false);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
