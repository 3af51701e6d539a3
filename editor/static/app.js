// longtail editor: plain ES module, no build step, no request to any other host.
// The scenario form is generated from the JSON Schema the server sends (/api/schema), so new
// schema fields get controls without front-end changes.

const $ = (id) => document.getElementById(id);
const state = { schema: null, defs: {}, scenario: null, map: null, selected: null, render: null,
                view: { x: 25, y: 0, scale: 6 }, file: "" };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, url, body, timeoutMs = 90000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { method, signal: ctl.signal, headers: body ? { "Content-Type": "application/json" } : {},
                                   body: body ? JSON.stringify(body) : undefined });
    let data;
    try { data = await res.json(); } catch { data = { error: `${res.status} ${res.statusText}` }; }
    if (!res.ok) { const err = new Error(data.error || `${res.status}`); err.data = data; err.status = res.status; throw err; }
    return data;
  } catch (e) {
    if (e.name === "AbortError") throw new Error(`no answer from the server in ${timeoutMs / 1000} s`);
    throw e;
  } finally { clearTimeout(timer); }
}

function status(text) { $("status").textContent = text; }
function message(text, isError = false) { const m = $("message"); m.textContent = text; m.className = isError ? "error" : ""; }

// ---------------------------------------------------------------- values by path
function getAt(path) { let v = state.scenario; for (const p of path) { if (v == null) return undefined; v = v[p]; } return v; }
function setAt(path, value) {
  let v = state.scenario;
  for (const p of path.slice(0, -1)) v = v[p];
  v[path[path.length - 1]] = value;
  changed();
}

// ---------------------------------------------------------------- schema-driven form
function resolve(s) { while (s && s.$ref) s = state.defs[s.$ref.split("/").pop()]; return s || {}; }
function nullableInner(s) {
  if (!s.anyOf || !s.anyOf.some((x) => x.type === "null")) return null;
  const rest = s.anyOf.filter((x) => x.type !== "null");
  return rest.length === 1 ? rest[0] : null;
}
function defaultFor(schema) {
  const s = resolve(schema);
  if (schema.default !== undefined) return structuredClone(schema.default);
  if (s.default !== undefined) return structuredClone(s.default);
  if (nullableInner(s)) return null;
  if (s.enum) return s.enum[0];
  if (s.const !== undefined) return s.const;
  if (s.type === "object" && s.properties) {
    const o = {};
    for (const req of s.required || []) o[req] = defaultFor(s.properties[req]);
    return o;
  }
  if (s.type === "array" && s.prefixItems) return s.prefixItems.map((p) => defaultFor(p));
  if (s.type === "array") return [];
  if (s.type === "object") return {};
  if (s.type === "number" || s.type === "integer") return Math.max(0, s.minimum ?? s.exclusiveMinimum ?? 0);
  if (s.type === "boolean") return false;
  return "";
}
function humanize(key) { return typeof key === "string" && key ? key.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase()) : ""; }
function title(schema, key) { return schema.title || humanize(key) || resolve(schema).title || String(key); }

function numberInput(s, path) {
  const v = getAt(path);
  const attrs = { type: "number", step: "any", "data-path": path.join("."), value: v ?? "" };
  if (s.minimum !== undefined) attrs.min = s.minimum;
  if (s.maximum !== undefined) attrs.max = s.maximum;
  return el("input", { ...attrs, onchange: (ev) => {
    const t = ev.target.value.trim();
    const n = Number(t);
    setAt(path, t === "" || Number.isNaN(n) ? t : (s.type === "integer" && Number.isInteger(n) ? n : n));
  } });
}

function control(schema, path, key) {
  const s = resolve(schema);
  const id = path.join(".");
  const wrap = el("div", { class: "field", "data-field": id });
  const label = el("label", { class: "name" }, title(schema, key));
  const inner = nullableInner(s);
  if (inner) {
    const on = getAt(path) !== null && getAt(path) !== undefined;
    const box = el("input", { type: "checkbox", "data-path": id + ".$set", checked: on, title: "set (unchecked: none)",
      onchange: (ev) => { setAt(path, ev.target.checked ? defaultFor(inner) : null); renderForm(); } });
    wrap.append(label, box);
    if (on) {
      const sub = control({ ...inner, title: "", examples: s.examples ?? inner.examples }, path, "");
      sub.classList.add("nested");
      if (sub.tagName !== "FIELDSET") sub.querySelector(":scope > label.name")?.remove();
      wrap.append(sub);
    }
  } else if (s.type === "object" && s.properties) {
    const fs = el("fieldset", { "data-field": id }, el("legend", {}, title(schema, key)));
    if (s.description) fs.append(el("div", { class: "desc" }, s.description));
    for (const [k, sub] of Object.entries(s.properties)) fs.append(control(sub, [...path, k], k));
    fs.append(el("div", { class: "error" }));
    return fs;
  } else if (s.type === "array" && s.prefixItems) {
    wrap.append(label);
    s.prefixItems.forEach((p, i) => wrap.append(numberInput(resolve(p), [...path, i]), " "));
  } else if (s.type === "array" && s.items && resolve(s.items).type === "object") {
    const items = resolve(s.items);
    const fs = el("fieldset", { "data-field": id }, el("legend", {}, title(schema, key)));
    (getAt(path) || []).forEach((item, i) => {
      const sub = control({ ...items, title: `${key}[${i}]${item && item.asset ? " " + item.asset : ""}` }, [...path, i], i);
      sub.querySelector("legend").append(" ", el("button", { type: "button", class: "remove", "data-remove": `${id}.${i}`,
        onclick: () => { getAt(path).splice(i, 1); state.selected = null; changed(); renderForm(); } }, "✕"));
      fs.append(sub);
    });
    fs.append(el("button", { type: "button", "data-add": id, onclick: () => {
      if (!Array.isArray(getAt(path))) setAt(path, []);
      getAt(path).push(defaultFor(items)); changed(); renderForm(); } }, `+ ${key}`));
    fs.append(el("div", { class: "error" }));
    return fs;
  } else if (s.type === "array") {
    const v = getAt(path) || [];
    wrap.append(label, el("input", { "data-path": id, value: v.join(", "), title: "comma-separated",
      onchange: (ev) => setAt(path, ev.target.value.split(",").map((x) => x.trim()).filter(Boolean)
        .map((x) => (Number.isNaN(Number(x)) ? x : Number(x)))) }));
  } else if (s.enum || s.const !== undefined) {
    const opts = s.enum || [s.const];
    const sel = el("select", { "data-path": id, onchange: (ev) => { setAt(path, ev.target.value); renderForm(); } });
    for (const o of opts) sel.append(el("option", { value: o, selected: o === getAt(path) }, String(o)));
    wrap.append(label, sel);
  } else if (s.type === "number" || s.type === "integer") {
    wrap.append(label, numberInput(s, path));
  } else if (s.type === "boolean") {
    wrap.append(label, el("input", { type: "checkbox", "data-path": id, checked: !!getAt(path),
      onchange: (ev) => setAt(path, ev.target.checked) }));
  } else if (s.type === "string") {
    const listId = s.examples ? `list-${id}` : undefined;
    wrap.append(label, el("input", { "data-path": id, value: getAt(path) ?? "", list: listId, size: 22,
      onchange: (ev) => setAt(path, ev.target.value) }));
    if (listId) { const dl = el("datalist", { id: listId }); s.examples.forEach((x) => dl.append(el("option", { value: x }))); wrap.append(dl); }
  } else {  // anything else (a mapping such as coverage): JSON text
    wrap.append(label, el("textarea", { "data-path": id, rows: 2, onchange: (ev) => {
      try { setAt(path, JSON.parse(ev.target.value || "null")); } catch (e) { showErrors([{ loc: id, msg: `not JSON: ${e.message}` }]); }
    } }, JSON.stringify(getAt(path) ?? {})));
  }
  if (s.description && !(s.type === "object")) wrap.title = s.description;
  wrap.append(el("div", { class: "error" }));
  return wrap;
}

function renderForm() {
  const form = $("form");
  form.replaceChildren();
  if (!state.scenario) return;
  for (const [k, sub] of Object.entries(state.schema.properties)) form.append(control(sub, [k], k));
  renderActorList();
  lastErrors && showErrors(lastErrors);
}

let lastErrors = null;
function showErrors(errors) {
  lastErrors = errors;
  document.querySelectorAll(".error").forEach((e) => { if (e.id !== "message") e.textContent = ""; });
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  for (const err of errors) {
    let parts = err.loc ? err.loc.split(".") : [];
    let target = null;
    while (parts.length && !target) {
      target = document.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
      if (!target) parts = parts.slice(0, -1);
    }
    const box = target ? target.querySelector(":scope > .error") : $("form-errors");
    if (target) target.classList.add("invalid");
    box.textContent += (box.textContent ? "; " : "") + (target ? err.msg : `${err.loc ? err.loc + ": " : ""}${err.msg}`);
  }
}

// ---------------------------------------------------------------- change handling
let changeTimer = null;
function changed() {
  clearTimeout(changeTimer);
  changeTimer = setTimeout(async () => { if (await validate()) refreshMap(); }, 250);
  drawMap();
  renderActorList();
}

async function validate() {
  try {
    const res = await api("POST", "/api/validate", { scenario: state.scenario });
    showErrors(res.errors || []);
    if (res.ok) $("yaml").textContent = res.yaml;
    if (!res.ok) status(res.error);
    return res.ok;
  } catch (e) { status(e.message); return false; }
}

// ---------------------------------------------------------------- map
let mapSeq = 0;
async function refreshMap() {
  const seq = ++mapSeq;
  try {
    const res = await api("POST", "/api/map", { scenario: state.scenario, seed: seed(), index: index() });
    if (seq !== mapSeq) return;
    state.map = res; drawMap(); status("");
  } catch (e) { if (seq === mapSeq) { message(e.message, true); state.map = null; drawMap(); } }
}

function toScreen(x, y) {
  const c = $("map"), v = state.view;
  return [c.width / 2 - (y - v.y) * v.scale, c.height / 2 - (x - v.x) * v.scale];
}
function toWorld(sx, sy) {
  const c = $("map"), v = state.view;
  return [v.x + (c.height / 2 - sy) / v.scale, v.y + (c.width / 2 - sx) / v.scale];
}
function placed() {  // [{group, i, spec}] for every actor spec with an exact spot
  const out = [];
  for (const group of ["events", "traffic"]) (state.scenario?.[group] || []).forEach((spec, i) => { if (spec.at) out.push({ group, i, spec }); });
  return out;
}
function knob(spec) { const yaw = (spec.at.yaw_deg * Math.PI) / 180, r = 22 / state.view.scale;
  return [spec.at.x_m + r * Math.cos(yaw), spec.at.y_m + r * Math.sin(yaw)]; }

function poly(ctx, pts, fill, stroke) {
  ctx.beginPath();
  pts.forEach(([x, y], k) => { const [sx, sy] = toScreen(x, y); k ? ctx.lineTo(sx, sy) : ctx.moveTo(sx, sy); });
  ctx.closePath();
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  if (stroke) { ctx.strokeStyle = stroke; ctx.stroke(); }
}
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

function drawMap() {
  const c = $("map"), ctx = c.getContext("2d");
  ctx.fillStyle = "#3c5a2e"; ctx.fillRect(0, 0, c.width, c.height);
  const m = state.map;
  if (m) {
    for (const s of m.shapes) {
      if (s.poly) poly(ctx, s.poly, rgb(s.color));
      else { const [sx, sy] = toScreen(s.circle[0], s.circle[1]); ctx.beginPath();
        ctx.arc(sx, sy, Math.max(1, s.circle[2] * state.view.scale), 0, 2 * Math.PI); ctx.fillStyle = rgb(s.color); ctx.fill(); }
    }
    if (m.ego) { ctx.lineWidth = 2; poly(ctx, m.ego, "rgba(255,255,255,.25)", "#fff"); }
    const cam = m.camera, [cx, cy] = toScreen(cam.x, cam.y);
    ctx.strokeStyle = "#ffd400"; ctx.lineWidth = 1.5; ctx.beginPath();
    for (const side of [-1, 1]) { const a = cam.yaw + side * cam.half_fov;
      const [ex, ey] = toScreen(cam.x + cam.range * Math.cos(a), cam.y + cam.range * Math.sin(a)); ctx.moveTo(cx, cy); ctx.lineTo(ex, ey); }
    ctx.stroke();
    ctx.lineWidth = 1.5;
    for (const a of m.actors) poly(ctx, a.poly, a.role === "event" ? "rgba(255,60,40,.75)" : "rgba(40,200,190,.7)", "#111");
  }
  for (const { group, i, spec } of placed()) {
    const sel = state.selected && state.selected.group === group && state.selected.i === i;
    const [sx, sy] = toScreen(spec.at.x_m, spec.at.y_m), [kx, ky] = toScreen(...knob(spec));
    ctx.strokeStyle = sel ? "#fff" : "#ddd"; ctx.lineWidth = sel ? 3 : 1.5;
    ctx.beginPath(); ctx.moveTo(sx, sy); ctx.lineTo(kx, ky); ctx.stroke();
    ctx.beginPath(); ctx.arc(sx, sy, 7, 0, 2 * Math.PI); ctx.fillStyle = group === "events" ? "#ff3c28" : "#28c8be"; ctx.fill(); ctx.stroke();
    ctx.beginPath(); ctx.arc(kx, ky, 4, 0, 2 * Math.PI); ctx.fillStyle = "#fff"; ctx.fill();
    ctx.fillStyle = "#fff"; ctx.font = "11px sans-serif"; ctx.fillText(spec.asset, sx + 9, sy - 8);
  }
}

function hit(sx, sy) {
  for (const p of placed().reverse()) {
    const [kx, ky] = toScreen(...knob(p.spec));
    if (Math.hypot(kx - sx, ky - sy) < 7) return { ...p, part: "knob" };
    const [ax, ay] = toScreen(p.spec.at.x_m, p.spec.at.y_m);
    if (Math.hypot(ax - sx, ay - sy) < 10) return { ...p, part: "body" };
  }
  return null;
}

function select(sel) {
  state.selected = sel ? { group: sel.group, i: sel.i } : null;
  $("delete-actor").disabled = !state.selected;
  drawMap(); renderActorList();
}

function setupMap() {
  const c = $("map");
  let drag = null;
  const pos = (ev) => { const r = c.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  c.addEventListener("mousedown", (ev) => {
    const [sx, sy] = pos(ev), h = hit(sx, sy);
    select(h);
    drag = h ? { ...h } : { part: "pan", sx, sy, view: { ...state.view } };
    if (h) { const [x, y] = toWorld(sx, sy); drag.dx = h.spec.at.x_m - x; drag.dy = h.spec.at.y_m - y; }  // grab offset
    c.focus();
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const [sx, sy] = pos(ev);
    if (drag.part === "pan") {
      state.view.x = drag.view.x - (drag.sy - sy) / state.view.scale; state.view.y = drag.view.y - (drag.sx - sx) / state.view.scale;
    } else {
      const [x, y] = toWorld(sx, sy), at = drag.spec.at;
      if (drag.part === "body") { at.x_m = Math.round((x + drag.dx) * 10) / 10; at.y_m = Math.round((y + drag.dy) * 10) / 10; }
      else at.yaw_deg = 5 * Math.round((Math.atan2(y - at.y_m, x - at.x_m) * 36) / Math.PI);  // 5° steps; exact in the form
      drag.moved = true;
    }
    drawMap();
  });
  window.addEventListener("mouseup", () => {
    if (drag && drag.moved) { changed(); renderForm(); }
    drag = null;
  });
  c.addEventListener("wheel", (ev) => { ev.preventDefault();
    state.view.scale = Math.min(40, Math.max(1.5, state.view.scale * (ev.deltaY < 0 ? 1.15 : 1 / 1.15))); drawMap(); });
  c.addEventListener("keydown", (ev) => { if ((ev.key === "Delete" || ev.key === "Backspace") && state.selected) deleteSelected(); });
}

function deleteSelected() {
  if (!state.selected) return;
  state.scenario[state.selected.group].splice(state.selected.i, 1);
  select(null); changed(); renderForm();
}

function addActor() {
  const group = $("add-role").value, list = (state.scenario[group] ||= []);
  const n = placed().length;
  list.push({ asset: $("add-asset").value, count_range: [1, 1], at: { x_m: Math.round(state.view.x - 5 + 4 * (n % 5)), y_m: 0, yaw_deg: 0 } });
  select({ group, i: list.length - 1 }); changed(); renderForm();
}

function renderActorList() {
  const ul = $("actor-list"); ul.replaceChildren();
  for (const group of ["events", "traffic"]) (state.scenario?.[group] || []).forEach((spec, i) => {
    const where = spec.at ? `at (${spec.at.x_m}, ${spec.at.y_m}) m, ${spec.at.yaw_deg}°` : `${spec.region}, ${spec.distance_m_range?.join("–")} m`;
    const sel = state.selected && state.selected.group === group && state.selected.i === i;
    ul.append(el("li", { class: sel ? "selected" : "", "data-asset": spec.asset, "data-group": group,
      onclick: () => select({ group, i }) }, `${group}[${i}] ${spec.asset} — ${where}`));
  });
}

// ---------------------------------------------------------------- render, resample, thumbnails
const seed = () => Number($("seed").value) || 0;
const index = () => Number($("index").value) || 0;

function applyToggles() {
  $("preview-boxes").style.display = $("show-boxes").checked ? "" : "none";
  for (const k of ["instance", "semantic", "depth"]) $(`preview-${k}`).style.display = $(`show-${k}`).checked ? "block" : "none";
}

async function render() {
  const btn = $("render"); btn.disabled = true; $("resample").disabled = true;
  message(`rendering seed ${seed()}, frame ${index()} …`);
  try {
    const r = await api("POST", "/api/render", { scenario: state.scenario, seed: seed(), index: index() });
    state.render = r;
    for (const k of ["rgb", "instance", "semantic", "depth"]) $(`preview-${k}`).src = r[k];
    const svg = $("preview-boxes");
    svg.setAttribute("viewBox", `0 0 ${r.width} ${r.height}`);
    svg.replaceChildren();
    for (const o of r.objects) if (o.bbox) {
      const [x0, y0, x1, y1] = o.bbox;
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0, class: o.role, "data-class": o.class, "data-asset": o.asset })
        .forEach(([k, v]) => rect.setAttribute(k, v));
      const t = document.createElementNS("http://www.w3.org/2000/svg", "title"); t.textContent = `${o.asset} (${o.class})`; rect.append(t);
      svg.append(rect);
    }
    applyToggles();
    $("preview").dataset.seed = r.seed; $("preview").dataset.index = r.index; $("preview").dataset.sha256 = r.rgb_sha256;
    message(`seed ${r.seed}, frame ${r.index}: ${r.objects.length} objects, rendered in ${r.seconds} s`);
  } catch (e) {
    message(e.message, true);
    if (e.data?.errors) showErrors(e.data.errors);
  } finally { btn.disabled = false; $("resample").disabled = false; }
  thumbnails();
}

let thumbSeq = 0;
async function thumbnails() {
  const seq = ++thumbSeq, box = $("thumbs");
  try {
    const r = await api("POST", "/api/thumbnails", { scenario: state.scenario, seed: seed(), count: 4 });
    if (seq !== thumbSeq) return;
    box.replaceChildren(...r.thumbnails.map((t) => el("figure", { "data-index": t.index,
      onclick: () => { $("index").value = t.index; refreshMap(); render(); } },
      t.image ? el("img", { src: t.image, alt: `frame ${t.index}` }) : el("div", { class: "error" }, t.error),
      el("figcaption", {}, `frame ${t.index}${t.image ? `: ${t.objects} objects` : ""}`))));
  } catch (e) { if (seq === thumbSeq) box.replaceChildren(el("div", { class: "error" }, e.message)); }
}

// ---------------------------------------------------------------- files
async function refreshFiles() {
  const r = await api("GET", "/api/files");
  const sel = $("files"); sel.replaceChildren(...r.files.map((f) => el("option", { value: f, selected: f === state.file }, f)));
}

async function save() {
  const name = $("filename").value.trim();
  try {
    const r = await api("PUT", `/api/files/${encodeURIComponent(name)}`, { scenario: state.scenario });
    state.file = r.name; localStorage.setItem("longtail-editor-file", r.name); $("filename").value = r.name;
    status(`saved ${r.name}`); showErrors([]);
    await refreshFiles();
  } catch (e) {
    status(`not saved: ${e.message}`);
    if (e.data?.errors) showErrors(e.data.errors.filter((x) => x.loc !== "name"));
  }
}

async function loadFile(name) {
  const r = await api("GET", `/api/files/${encodeURIComponent(name)}`);
  state.file = r.name; $("filename").value = r.name; localStorage.setItem("longtail-editor-file", r.name);
  setScenario(r.scenario); status(`loaded ${r.name}`); await refreshFiles();
}

function setScenario(sc) {
  state.scenario = sc; state.selected = null; lastErrors = null;
  renderForm(); changed();
}

async function openStart() {
  const r = await api("GET", `/api/catalog/${encodeURIComponent($("start").value)}`);
  setScenario(r.scenario); status(`opened ${$("start").value}`);
}

// ---------------------------------------------------------------- start
async function main() {
  state.schema = await api("GET", "/api/schema");
  state.defs = state.schema.$defs || {};
  const [cat, assets] = await Promise.all([api("GET", "/api/catalog"), api("GET", "/api/assets")]);
  for (const s of cat.scenarios) $("start").append(el("option", { value: s.name, title: s.description }, s.name));
  for (const a of assets.assets) $("add-asset").append(el("option", { value: a.name }, `${a.name} (${a.class})`));
  $("open-start").onclick = () => openStart().catch((e) => status(e.message));
  $("save").onclick = save;
  $("load").onclick = () => $("files").value && loadFile($("files").value).catch((e) => status(e.message));
  $("add-actor").onclick = addActor;
  $("delete-actor").onclick = deleteSelected;
  $("render").onclick = render;
  $("resample").onclick = () => { $("seed").value = seed() + 1; refreshMap(); render(); };
  $("seed").onchange = $("index").onchange = refreshMap;
  for (const k of ["boxes", "instance", "semantic", "depth"]) $(`show-${k}`).onchange = applyToggles;
  setupMap();
  const last = localStorage.getItem("longtail-editor-file");
  await refreshFiles();
  if (last && [...$("files").options].some((o) => o.value === last)) await loadFile(last);
  else await openStart();
  document.body.dataset.ready = "1";
}

main().catch((e) => { status(`cannot start: ${e.message}`); });
