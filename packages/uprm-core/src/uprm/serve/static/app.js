// The UPRM detection page: upload or choose a video, follow the job, show the result.
// It uses only the public REST API (/v1), like any other client. No framework, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const HEADERS = { "X-Requested-With": "uprm" };   // proves to the server that the page sent it
const POLL_MS = 500;
let current = null;        // the job shown
let pollTimer = null;

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

function stripButton(seg, i, duration) {
  const b = el("button", { type: "button", title: `#${i + 1} ${clock(seg.start)}–${clock(seg.end)} ${seg.cause || ""}` });
  b.dataset.index = String(i);
  b.style.left = `${100 * seg.start / duration}%`;
  b.style.width = `${100 * (seg.end - seg.start) / duration}%`;
  b.addEventListener("click", () => seek(seg.start, i));
  return b;
}

async function showResult(job) {
  const result = await (await api(`/v1/jobs/${job.id}/result`)).json();
  if (current !== job.id) return;
  const duration = Math.max(result.duration, 1e-6);
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
  $("strip").replaceChildren($("playhead") || el("div", { id: "playhead" }),
                             ...segments.map((s, i) => stripButton(s, i, duration)));
  $("summary").textContent = `${segments.length} threat segment(s) in ${clock(result.duration)} · `
    + `${(result.windows || []).length} windows of ${result.settings.window} s`;
  $("result").hidden = false;
  $("result").dataset.job = job.id;
}

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  if (player.duration) $("playhead").style.left = `${100 * player.currentTime / player.duration}%`;
});

// -- start ------------------------------------------------------------------------------------

function fromHash() {
  const m = /job=([0-9a-f]{32})/.exec(location.hash);
  if (m && m[1] !== current) follow(m[1]);
}

async function start() {
  refreshHealth();
  try {
    await Promise.all([loadMedia(), loadJobs()]);
    fromHash();
  } catch (e) {
    if (e.message !== "sign in first") showError("submit-error", e.message);
  }
}

window.addEventListener("hashchange", fromHash);
setInterval(refreshHealth, 5000);
start();
