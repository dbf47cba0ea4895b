// The review page. Every text from the data is set with textContent, never as markup.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { items: [], current: null, detail: null, reviewer: "", filters: {}, done: false };

function headers(json) {
  // Percent-encoded: a header value can only hold Latin-1, names can hold anything.
  const h = { "X-Reviewer": encodeURIComponent(state.reviewer) };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: headers(options.body !== undefined) });
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const detail = body?.detail;
    const err = new Error(typeof detail === "string" ? detail : detail?.message || resp.statusText);
    err.status = resp.status; err.detail = detail;
    throw err;
  }
  return body;
}

function say(text) {
  $("message").textContent = text;
  clearTimeout(say.timer);
  if (text) say.timer = setTimeout(() => ($("message").textContent = ""), 4000);
}

function query(extra) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...state.filters, ...extra })) if (v !== "" && v != null) q.set(k, v);
  return q.toString();
}

async function refreshProgress() {
  const info = await api("/api/info");
  $("collection").textContent = `${info.data} (${info.format})`;
  let text = `reviewed ${info.reviewed} of ${info.items}`;
  if (info.indexing) text += " · indexing…";
  if (info.index_error) text += ` · indexing failed: ${info.index_error}`;
  $("progress").textContent = text;
  return info;
}

function statusOf(review) { return review ? review.action : ""; }

function renderList() {
  const list = $("list");
  list.replaceChildren();
  for (const it of state.items) {
    const li = document.createElement("li");
    li.dataset.pos = it.pos;
    if (state.current === it.pos) li.classList.add("current");
    const badge = document.createElement("span");
    const status = statusOf(it.review);
    badge.className = `status ${status}`;
    badge.textContent = status;
    const name = document.createElement("b");
    name.textContent = it.clip;
    li.append(badge, name, document.createElement("br"), document.createTextNode(it.caption));
    li.addEventListener("click", () => show(it.pos));
    list.append(li);
  }
  $("more").hidden = state.done;
}

async function loadList(reset) {
  const after = reset || !state.items.length ? 0 : state.items[state.items.length - 1].pos;
  const page = await api(`/api/items?${query({ after, limit: 50 })}`);
  state.items = reset ? page : state.items.concat(page);
  state.done = page.length < 50;
  renderList();
}

async function neighbour(step) {
  const from = state.current ?? 0;
  const extra = step > 0 ? { after: from, limit: 1 } : { before: from, limit: 1 };
  const page = await api(`/api/items?${query(extra)}`);
  return page.length ? page[0].pos : null;
}

function text(tag, value) { const el = document.createElement(tag); el.textContent = value; return el; }

async function show(pos) {
  const d = await api(`/api/items/${pos}`);
  state.current = pos; state.detail = d;
  $("clip").hidden = false;
  $("clip-id").textContent = d.clip;
  $("clip-pos").textContent = `#${d.pos}` + (d.item !== d.clip ? ` · ${d.item}` : "");
  $("caption").textContent = d.caption;
  let check = d.score == null ? "" : `check score ${d.score.toFixed(3)}`;
  if (d.accepted != null) check += d.accepted ? " · passed the check" : " · below the check threshold";
  $("check").textContent = check;
  $("player").src = `/api/items/${pos}/audio`;
  $("spectro").src = `/api/items/${pos}/spectrogram.png`;
  const hints = $("hints");
  hints.replaceChildren(...(d.detections || []).map(([label, score]) =>
    text("li", score == null ? label : `${label} ${Number(score).toFixed(2)}`)));
  const qa = $("qa");
  qa.replaceChildren();
  for (const { question, answer } of d.qa || []) qa.append(text("dt", question), text("dd", answer));
  for (const other of d.other_captions || []) qa.append(text("dt", "other caption of this clip"), text("dd", other));
  showReview(d.review);
  closeForms();
  renderList();
}

function showReview(review) {
  state.detail.review = review;
  const el = $("review-state");
  if (!review) { el.textContent = "not reviewed yet"; return; }
  const when = new Date(review.created_at * 1000).toLocaleString();
  const done = { accept: "accepted", edit: "edited", reject: "rejected" }[review.action];
  let t = `${done} by ${review.reviewer} at ${when}`;
  if (review.action === "edit") t += `: “${review.caption}”`;
  if (review.action === "reject") t += ` (${review.reason})`;
  el.textContent = t;
  const item = state.items.find((it) => it.pos === state.current);
  if (item) { item.review = review; renderList(); }
}

function closeForms() {
  if ($("editor").contains(document.activeElement) || $("rejecter").contains(document.activeElement)) document.activeElement.blur();
  $("editor").hidden = true; $("rejecter").hidden = true;
}

// Key presses run one after another, so three quick "k"s go back three clips.
let queue = Promise.resolve();
function enqueue(fn) { queue = queue.then(fn).catch((err) => say(err.message)); }

async function submit(action, caption, reason) {
  const d = state.detail;
  try {
    const review = await api(`/api/items/${d.pos}/review`, {
      method: "POST",
      body: JSON.stringify({ action, caption, reason, expected: d.review ? d.review.id : null }),
    });
    showReview(review);
    closeForms();
    say(`${review.action} saved`);
    refreshProgress();
    const next = await neighbour(1);
    if (next != null) await show(next);
  } catch (err) {
    if (err.status === 409) {
      showReview(err.detail?.current || null);
      say("this clip was reviewed again in another window; its current review is shown");
    } else say(`not saved: ${err.message}`);
  }
}

function openEditor() {
  closeForms();
  $("editor").hidden = false;
  const box = $("edit-text");
  box.value = state.detail.review?.action === "edit" ? state.detail.review.caption : state.detail.caption;
  box.focus();
  checkCaption();
}

let checkTimer = null;
function checkCaption() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(async () => {
    const caption = $("edit-text").value;
    const labels = (state.detail.detections || []).map(([l]) => l);
    try {
      const { warnings } = await api("/api/check", { method: "POST", body: JSON.stringify({ caption, labels }) });
      if ($("edit-text").value === caption) $("warnings").replaceChildren(...warnings.map((w) => text("li", w)));
    } catch (err) { say(err.message); }
  }, 150);
}

function openRejecter() { closeForms(); $("rejecter").hidden = false; $("reason").focus(); }

function reject() {
  const details = $("reason-text").value.trim();
  $("reason-text").value = "";
  return submit("reject", null, $("reason").value + (details ? `: ${details}` : ""));
}

async function go(step) {
  const pos = await neighbour(step);
  if (pos == null) say(step > 0 ? "no more clips" : "this is the first clip");
  else await show(pos);
}

function togglePlay() { const p = $("player"); if (p.paused) p.play(); else p.pause(); }

document.addEventListener("keydown", (e) => {
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement?.tagName);
  if (e.key === "Escape") { closeForms(); document.activeElement?.blur(); return; }
  if (document.activeElement === $("edit-text") && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault(); const caption = $("edit-text").value; enqueue(() => submit("edit", caption, "")); return;
  }
  if (!$("rejecter").hidden && e.key === "Enter" && document.activeElement?.tagName !== "BUTTON") {
    e.preventDefault(); enqueue(reject); return;
  }
  if (typing || !state.detail || e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = { " ": togglePlay, a: () => submit("accept", null, ""), e: openEditor, r: openRejecter,
                 j: () => go(1), ArrowRight: () => go(1), k: () => go(-1), ArrowLeft: () => go(-1) };
  if (keys[e.key]) { e.preventDefault(); enqueue(keys[e.key]); }
});

function wire() {
  $("accept").addEventListener("click", () => submit("accept", null, ""));
  $("edit").addEventListener("click", openEditor);
  $("reject").addEventListener("click", openRejecter);
  $("confirm-reject").addEventListener("click", reject);
  $("save").addEventListener("click", () => submit("edit", $("edit-text").value, ""));
  $("cancel").addEventListener("click", closeForms);
  $("next").addEventListener("click", () => go(1));
  $("prev").addEventListener("click", () => go(-1));
  $("more").addEventListener("click", () => loadList(false));
  $("edit-text").addEventListener("input", checkCaption);
  $("spectro-wrap").addEventListener("click", (e) => {
    const p = $("player"), box = e.currentTarget.getBoundingClientRect();
    if (p.duration) p.currentTime = ((e.clientX - box.left) / box.width) * p.duration;
  });
  $("player").addEventListener("timeupdate", () => {
    const p = $("player");
    $("playhead").style.left = p.duration ? `${(100 * p.currentTime) / p.duration}%` : "0";
  });
  $("filters").addEventListener("submit", async (e) => {
    e.preventDefault();
    state.filters = { status: $("f-status").value, label: $("f-label").value.trim(),
                      min_score: $("f-min").value, max_score: $("f-max").value };
    state.current = null;
    await loadList(true);
    if (state.items.length) await show(state.items[0].pos);
    else { $("clip").hidden = true; say("no clip matches these filters"); }
  });
  $("reviewer").addEventListener("change", async () => {
    state.reviewer = $("reviewer").value.trim();
    localStorage.setItem("sonicaps-reviewer", state.reviewer);
    await refreshProgress(); await loadList(true);
    if (state.current != null) await show(state.current);
  });
}

async function main() {
  wire();
  const stored = localStorage.getItem("sonicaps-reviewer");
  const fromUrl = new URLSearchParams(location.search).get("reviewer");
  state.reviewer = fromUrl || stored || "";
  const info = await refreshProgress();
  if (!state.reviewer) state.reviewer = info.reviewer;
  $("reviewer").value = state.reviewer;
  await loadList(true);
  if (state.items.length) await show(state.items[0].pos);
  // Indexing a large collection continues in the background: keep the count current.
  setInterval(async () => {
    const before = state.items.length;
    const now = await refreshProgress();
    if (before < 50 && now.items > before) { await loadList(true); if (state.current == null && state.items.length) show(state.items[0].pos); }
  }, 3000);
}

main().catch((err) => say(err.message));
