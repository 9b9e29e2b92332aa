// The UPRM detection page: upload or choose a video, follow the job, show the result,
// review it (confirm, reject, move, categorise, add segments) and save the review.
// It uses only the public REST API (/v1), like any other client. No framework, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const HEADERS = { "X-Requested-With": "uprm" };   // proves to the server that the page sent it
const POLL_MS = 500;
const MIN_SPAN = 0.2;      // seconds: the shortest segment a drag makes
let current = null;        // the job shown
let pollTimer = null;
let taxonomy = null;       // GET /v1/taxonomy: the site's categories
// the review being edited: the shown job, its video's length and its segments
// ({start, end, category, cause, verdict: "" (not yet) | confirmed | rejected | added})
const draft = { job: null, duration: 1, segments: [] };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function clock(s) {
  s = Math.max(0, s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = (s % 60).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

async function problemOf(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || response.statusText;
  } catch (e) {
    return response.statusText || `HTTP ${response.status}`;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options,
                                       headers: { ...HEADERS, ...(options.headers || {}) } });
  if (response.status === 401) {
    $("login").hidden = false;
    throw new Error("sign in first");
  }
  if (!response.ok) throw new Error(await problemOf(response));
  return response;
}

function showError(id, message) {
  const node = $(id);
  node.textContent = message || "";
  node.hidden = !message;
}

// -- health and lists ---------------------------------------------------------------------

async function refreshHealth() {
  try {
    const body = await (await fetch("/healthz")).json();
    $("health").textContent = body.ready ? "model ready" : `worker ${body.worker}`;
    $("health").className = `pill ${body.ready ? "ready" : body.worker}`;
  } catch (e) {
    $("health").textContent = "server unreachable";
    $("health").className = "pill failed";
  }
}

async function loadMedia() {
  const body = await (await api("/v1/media")).json();
  $("media-form").hidden = !body.enabled || body.files.length === 0;
  $("media").replaceChildren(...body.files.map((f) => el("option", { value: f.path, textContent: f.path })));
}

async function loadJobs() {
  const body = await (await api("/v1/jobs?limit=20")).json();
  $("jobs").replaceChildren(...body.jobs.map((job) => {
    const link = el("a", { href: `#job=${job.id}`, textContent: job.video.name });
    link.dataset.job = job.id;
    return el("li", {}, link, " ", el("span", { class: `pill ${job.state}`, textContent: job.state }),
              el("span", { class: "when", textContent: (job.created || "").replace("T", " ").slice(0, 19) }));
  }));
}

// -- submitting ---------------------------------------------------------------------------

function uploadWithProgress(file) {
  // XMLHttpRequest reports upload progress; fetch does not
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    xhr.setRequestHeader("X-Requested-With", "uprm");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) showProgress(e.loaded / e.total, `uploading ${Math.round(100 * e.loaded / e.total)} %`);
    };
    xhr.onload = () => {
      if (xhr.status === 202) resolve(xhr.response);
      else if (xhr.status === 401) { $("login").hidden = false; reject(new Error("sign in first")); }
      else reject(new Error((xhr.response && xhr.response.detail) || `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("the upload failed (network)"));
    const form = new FormData();
    form.append("video", file, file.name);
    xhr.send(form);
  });
}

async function submit(start) {
  showError("submit-error", "");
  for (const b of document.querySelectorAll("#submit button")) b.disabled = true;
  try {
    const job = await start();
    location.hash = `job=${job.id}`;
    follow(job.id);
    loadJobs();
  } catch (e) {
    showError("submit-error", e.message);
  } finally {
    for (const b of document.querySelectorAll("#submit button")) b.disabled = false;
  }
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) { showError("submit-error", "choose a video file first"); return; }
  $("job").hidden = false;
  $("job-name").textContent = file.name;
  $("state").textContent = "uploading";
  submit(() => uploadWithProgress(file));
});

$("media-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const path = $("media").value;
  submit(async () => (await api("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
                                              body: JSON.stringify({ path }) })).json());
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/v1/session", { method: "POST", headers: { "Content-Type": "application/json" },
                               body: JSON.stringify({ token: $("token").value }) });
    $("login").hidden = true;
    showError("login-error", "");
    start();
  } catch (e) {
    showError("login-error", e.message);
  }
});

// -- following a job ----------------------------------------------------------------------

function showProgress(fraction, text) {
  $("progress").value = fraction;
  $("progress-text").textContent = text;
}

function showJob(job) {
  $("job").hidden = false;
  $("job").dataset.state = job.state;
  $("job-name").textContent = job.video.name;
  $("state").textContent = job.state;
  $("state").className = `pill ${job.state}`;
  const w = job.windows;
  const text = job.state === "queued" ? `${job.queue_position} job(s) before it`
    : w.total ? `${w.done} / ${w.total} windows` : "";
  showProgress(job.progress, text);
  showError("job-error", job.error ? job.error.message : "");
}

function follow(id) {
  clearTimeout(pollTimer);
  current = id;
  $("result").hidden = true;
  const tick = async () => {
    if (current !== id) return;
    try {
      const job = await (await api(`/v1/jobs/${id}`)).json();
      showJob(job);
      if (job.state === "done") { await showResult(job); loadJobs(); return; }
      if (job.state === "failed") { loadJobs(); return; }
    } catch (e) {
      showError("job-error", e.message);
      return;
    }
    pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

// -- the result -----------------------------------------------------------------------------

function seek(seconds, index) {
  const player = $("player");
  const go = () => { player.currentTime = seconds; };
  if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
  for (const row of document.querySelectorAll("#segments tbody tr")) {
    row.classList.toggle("active", Number(row.dataset.index) === index);
  }
  for (const b of document.querySelectorAll("#strip button")) {
    b.classList.toggle("active", Number(b.dataset.index) === index);
  }
}

function weightsOf(weights) {
  const box = el("div", { class: "weights" });
  const names = Object.keys(weights || {}).sort((a, b) => weights[b] - weights[a]);
  for (const name of names) {
    const fill = el("div");
    fill.style.width = `${Math.round(100 * Math.min(1, weights[name]))}%`;
    box.append(el("span", { textContent: name }), el("div", { class: "bar" }, fill),
               el("span", { textContent: weights[name].toFixed(2) }));
  }
  return box;
}

function segmentRow(job, seg, i) {
  const row = el("tr", { dataset: { index: String(i), start: String(seg.start), end: String(seg.end) } });
  const evidence = seg.evidence
    ? el("a", { href: `/v1/jobs/${job.id}/evidence/${i + 1}.png`, target: "_blank", textContent: "evidence" })
    : "";
  row.append(el("td", { textContent: String(i + 1) }),
             el("td", { textContent: `${clock(seg.start)} – ${clock(seg.end)}` }),
             el("td", { textContent: seg.score.toFixed(2) }),
             el("td", { textContent: seg.cause || "–" }),
             el("td", {}, weightsOf(seg.expert_weights)),
             el("td", {}, evidence));
  row.addEventListener("click", (event) => {
    if (event.target.tagName !== "A") seek(seg.start, i);
  });
  return row;
}

async function showResult(job) {
  const [result, reviews] = await Promise.all([
    api(`/v1/jobs/${job.id}/result`).then((r) => r.json()),
    api(`/v1/jobs/${job.id}/review`).then((r) => r.json()),
  ]);
  if (current !== job.id) return;
  const segments = result.segments || [];
  const player = $("player");
  if (player.dataset.job !== job.id) {
    player.dataset.job = job.id;
    player.src = `/v1/jobs/${job.id}/video`;
  }
  $("timeline").src = `/v1/jobs/${job.id}/timeline.png`;
  $("segments").querySelector("tbody").replaceChildren(...segments.map((s, i) => segmentRow(job, s, i)));
  $("segments").hidden = segments.length === 0;
  $("no-segments").hidden = segments.length > 0;
  $("summary").textContent = `${segments.length} threat segment(s) in ${clock(result.duration)} · `
    + `${(result.windows || []).length} windows of ${result.settings.window} s`;
  startReview(job.id, result, reviews.current);
  $("result").hidden = false;
  $("result").dataset.job = job.id;
}

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  if (player.duration) $("playhead").style.left = `${100 * player.currentTime / player.duration}%`;
});

// -- the review: the strip -----------------------------------------------------------------

const round1 = (t) => Math.round(t * 10) / 10;

function timeAt(clientX) {
  const box = $("strip").getBoundingClientRect();
  return Math.min(draft.duration, Math.max(0, draft.duration * (clientX - box.left) / box.width));
}

function placeButton(b, seg) {
  b.style.left = `${100 * seg.start / draft.duration}%`;
  b.style.width = `${100 * (seg.end - seg.start) / draft.duration}%`;
  b.className = seg.verdict || "pending";
  b.title = `#${Number(b.dataset.index) + 1} ${clock(seg.start)}–${clock(seg.end)} ${seg.category || ""} `
    + `${seg.cause || ""} (${seg.verdict || "not reviewed"})`;
}

function stripButton(seg, i) {
  const b = el("button", { type: "button" }, el("span", { class: "handle start" }), el("span", { class: "handle end" }));
  b.dataset.index = String(i);
  placeButton(b, seg);
  b.addEventListener("click", () => {
    if (b.dataset.dragged) { delete b.dataset.dragged; return; }   // the end of a drag is no click
    seek(seg.start, i);
  });
  for (const handle of b.querySelectorAll(".handle")) {
    handle.addEventListener("pointerdown", (event) => dragEnd(event, b, i, handle.classList.contains("start")));
  }
  return b;
}

function dragEnd(event, button, i, isStart) {
  // move one end of segment i with the pointer, within the video and never past the other end
  event.preventDefault();
  event.stopPropagation();
  const handle = event.currentTarget;
  handle.setPointerCapture(event.pointerId);
  const seg = draft.segments[i];
  const move = (e) => {
    const t = round1(timeAt(e.clientX));
    if (isStart) seg.start = Math.max(0, Math.min(t, round1(seg.end - MIN_SPAN)));
    else seg.end = Math.min(draft.duration, Math.max(t, round1(seg.start + MIN_SPAN)));
    button.dataset.dragged = "1";
    placeButton(button, seg);
    showTimes(i);
  };
  handle.addEventListener("pointermove", move);
  handle.addEventListener("pointerup", () => handle.removeEventListener("pointermove", move), { once: true });
}

function markMissed(event) {
  // a drag across the strip outside every segment adds a missed threat; a plain click seeks there
  if (event.target !== $("strip") || !draft.job) return;
  event.preventDefault();
  const strip = $("strip");
  const box = $("selection");
  const from = timeAt(event.clientX);
  let to = from;
  strip.setPointerCapture(event.pointerId);
  const move = (e) => {
    to = timeAt(e.clientX);
    box.hidden = false;
    box.style.left = `${100 * Math.min(from, to) / draft.duration}%`;
    box.style.width = `${100 * Math.abs(to - from) / draft.duration}%`;
  };
  strip.addEventListener("pointermove", move);
  strip.addEventListener("pointerup", () => {
    strip.removeEventListener("pointermove", move);
    box.hidden = true;
    const [start, end] = [round1(Math.min(from, to)), round1(Math.max(from, to))];
    if (end - start >= MIN_SPAN) {
      draft.segments.push({ start, end, category: "", cause: "", verdict: "added" });
      renderReview();
    } else {
      seek(from, -1);
    }
  }, { once: true });
}

$("strip").addEventListener("pointerdown", markMissed);

// -- the review: the table -------------------------------------------------------------------

function categorySelect(seg) {
  const threats = taxonomy ? taxonomy.categories.filter((c) => taxonomy.threats.includes(c.name)) : [];
  const options = [el("option", { value: "", textContent: "choose…" }),
                   ...threats.map((c) => el("option", { value: c.name, textContent: `${c.name} (${c.severity})`,
                                                        title: c.description }))];
  if (seg.category && !threats.some((c) => c.name === seg.category)) {
    options.push(el("option", { value: seg.category, textContent: `${seg.category} (not in the taxonomy)` }));
  }
  const select = el("select", { class: "category", title: "the category (its severity)" }, ...options);
  select.value = seg.category || "";
  return select;
}

function verdictCell(seg, i) {
  if (seg.verdict === "added") {
    const remove = el("button", { type: "button", class: "remove", textContent: "remove", title: "forget this segment" });
    remove.addEventListener("click", () => { draft.segments.splice(i, 1); renderReview(); });
    return el("td", {}, el("span", { class: "pill added", textContent: "added" }), " ", remove);
  }
  const select = el("select", { class: "verdict" },
                    el("option", { value: "", textContent: "review…" }),
                    el("option", { value: "confirmed", textContent: "confirm: a threat" }),
                    el("option", { value: "rejected", textContent: "reject: no threat" }));
  select.value = seg.verdict;
  select.addEventListener("change", () => { seg.verdict = select.value; renderStrip(); });
  return el("td", {}, select);
}

function timeInput(seg, key) {
  const input = el("input", { type: "number", class: key, min: "0", max: String(draft.duration), step: "0.1",
                              value: String(seg[key]) });
  input.addEventListener("change", () => {
    const t = Number(input.value);
    if (input.value !== "" && Number.isFinite(t)) seg[key] = Math.min(draft.duration, Math.max(0, t));
    input.value = String(seg[key]);
    renderStrip();
  });
  return input;
}

function reviewRow(seg, i) {
  const row = el("tr", { dataset: { index: String(i) } });
  const category = categorySelect(seg);
  category.addEventListener("change", () => {
    seg.category = category.value;
    renderStrip();
  });
  const cause = el("input", { type: "text", class: "cause", value: seg.cause || "", placeholder: "why",
                              maxLength: 2000 });
  cause.addEventListener("input", () => { seg.cause = cause.value; });
  row.append(el("td", { textContent: String(i + 1) }), el("td", {}, timeInput(seg, "start")),
             el("td", {}, timeInput(seg, "end")), verdictCell(seg, i), el("td", {}, category),
             el("td", {}, cause));
  return row;
}

function showTimes(i) {
  const row = $("review-segments").querySelector(`tbody tr[data-index="${i}"]`);
  if (!row) return;
  row.querySelector("input.start").value = String(draft.segments[i].start);
  row.querySelector("input.end").value = String(draft.segments[i].end);
}

function renderStrip() {
  $("strip").replaceChildren($("playhead"), $("selection"), ...draft.segments.map((s, i) => stripButton(s, i)));
}

function renderReview() {
  $("review-segments").querySelector("tbody").replaceChildren(...draft.segments.map((s, i) => reviewRow(s, i)));
  $("review-segments").hidden = draft.segments.length === 0;
  $("review-empty").hidden = draft.segments.length > 0;
  renderStrip();
}

function showSaved(review) {
  $("review-status").textContent = review
    ? `saved: revision ${review.revision} by ${review.reviewer}, ${review.at.replace("T", " ").slice(0, 19)} · `
      + `label ${review.label}`
    : "not reviewed yet";
}

function startReview(jobId, result, saved) {
  // the saved review when there is one, else the model's segments, each still to be reviewed
  draft.job = jobId;
  draft.duration = Math.max(result.duration, 1e-6);
  const from = saved ? saved.segments
    : (result.segments || []).map((s) => ({ ...s, verdict: "" }));
  draft.segments = from.map((s) => ({ start: s.start, end: s.end, category: s.category || "", cause: s.cause || "",
                                      verdict: s.verdict }));
  showError("review-error", "");
  showSaved(saved);
  renderReview();
}

function reviewProblem() {
  // what must be done before saving, or null
  for (const [i, seg] of draft.segments.entries()) {
    if (!seg.verdict) return `confirm or reject segment #${i + 1} first`;
    if (seg.verdict !== "rejected" && !seg.category) return `choose the category of segment #${i + 1}`;
  }
  return null;
}

$("review-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const problem = reviewProblem();
  showError("review-error", problem);
  if (problem || !draft.job) return;
  const jobId = draft.job;
  const body = {
    reviewer: $("reviewer").value,
    segments: draft.segments.map((s) => ({ start: s.start, end: s.end, category: s.category || null,
                                           cause: s.cause || null, verdict: s.verdict })),
  };
  $("save-review").disabled = true;
  try {
    const saved = await (await api(`/v1/jobs/${jobId}/review`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();
    localStorage.setItem("uprm-reviewer", body.reviewer);
    if (draft.job === jobId) showSaved(saved);
  } catch (e) {
    showError("review-error", e.message);
  } finally {
    $("save-review").disabled = false;
  }
});

async function loadTaxonomy() {
  taxonomy = await (await api("/v1/taxonomy")).json();
}

// -- start ------------------------------------------------------------------------------------

function fromHash() {
  const m = /job=([0-9a-f]{32})/.exec(location.hash);
  if (m && m[1] !== current) follow(m[1]);
}

async function start() {
  refreshHealth();
  $("reviewer").value = $("reviewer").value || localStorage.getItem("uprm-reviewer") || "";
  try {
    await Promise.all([loadMedia(), loadJobs(), loadTaxonomy()]);
    fromHash();
  } catch (e) {
    if (e.message !== "sign in first") showError("submit-error", e.message);
  }
}

window.addEventListener("hashchange", fromHash);
setInterval(refreshHealth, 5000);
start();
