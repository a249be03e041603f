// Chronos web app: live library, resumable uploads, player + transcript, chat, dashboard.
// No build step and no CDN: this file and the vendored libraries are served by the app.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

function api(url, options = {}) {
  const headers = Object.assign({ "X-CSRF-Token": CSRF }, options.headers || {});
  return fetch(url, Object.assign({ credentials: "same-origin" }, options, { headers }));
}

function mmss(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function usd(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (n === 0) return "$0";
  if (Math.abs(n) >= 0.01) return "$" + n.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  if (Math.abs(n) >= 0.000001) return "$" + n.toFixed(6).replace(/0+$/, "");
  return "<$0.000001";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

// Forms that destroy something ask first.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset?.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// ---------------------------------------------------------------- live library
function lectureRow(lecture) {
  const isCreator = document.body.dataset.role === "creator";
  const row = el("li", { class: "lecture", id: `lecture-${lecture.id}`, "data-video": lecture.id });
  row.append(el("a", { class: "title", href: `/app/lectures/${lecture.id}`, text: lecture.title }));
  const status = el("span", { class: "status", "aria-live": "polite" },
    el("span", { class: "badge" }), el("progress", { max: "1", value: "0", hidden: true }),
    el("span", { class: "eta" }));
  row.append(status);
  if (isCreator) row.append(el("span", { class: "cost", title: "cost so far" }));
  row.append(el("span", { class: "error-msg" }));
  if (isCreator) {
    const form = el("form", { method: "post", action: `/app/lectures/${lecture.id}/retry`, class: "retry", hidden: true },
      el("input", { type: "hidden", name: "_csrf", value: CSRF }), el("button", { type: "submit", text: "Retry" }));
    row.append(form);
  }
  return row;
}

function updateLecture(lecture) {
  let row = document.getElementById(`lecture-${lecture.id}`);
  if (!row) {
    const list = document.querySelector(`ol.lectures[data-course="${lecture.course_id || ""}"]`)
      || document.querySelector(`[data-course="${lecture.course_id || ""}"] ol.lectures`);
    if (!list) return;
    row = lectureRow(lecture);
    list.append(row);
    document.getElementById("no-lessons")?.remove();
  }
  row.dataset.status = lecture.status;
  const badge = row.querySelector(".badge");
  badge.textContent = lecture.status;
  badge.className = `badge s-${lecture.status}`;
  const bar = row.querySelector("progress");
  const busy = lecture.progress !== null && lecture.progress !== undefined;
  bar.hidden = !busy;
  if (busy) {
    bar.value = lecture.progress;
    bar.setAttribute("aria-label", `${Math.round(lecture.progress * 100)} % done`);
  }
  const eta = row.querySelector(".eta");
  eta.textContent = busy ? `${Math.round(lecture.progress * 100)} %` +
    (lecture.eta_s ? ` · about ${mmss(lecture.eta_s)} left` : "") : "";
  const cost = row.querySelector(".cost");
  if (cost && "cost_usd" in lecture) cost.textContent = usd(lecture.cost_usd);
  row.querySelector(".error-msg").textContent = lecture.status === "failed" ? (lecture.error_message || "") : "";
  const retry = row.querySelector("form.retry");
  if (retry) retry.hidden = lecture.status !== "failed";
  const title = row.querySelector("a.title");
  if (title && title.textContent !== lecture.title) title.textContent = lecture.title;
}

const library = document.getElementById("library");
if (library?.dataset.live) {
  const source = new EventSource(library.dataset.live);
  source.addEventListener("library", (event) => {
    const data = JSON.parse(event.data);
    for (const lecture of data.lectures) updateLecture(lecture);
    document.body.dataset.libraryVersion = data.version;
  });
}

// ---------------------------------------------------------------- resumable upload
function uploadRow(file) {
  const bar = el("progress", { max: String(file.size), value: "0" });
  const label = el("span", { class: "upload-state", text: "starting…" });
  const row = el("li", { class: "upload" }, el("strong", { text: file.name }), " ", bar, " ", label);
  document.getElementById("uploads").append(row);
  return { row, bar, label };
}

function putRange(url, blob, start, total, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Content-Range", `bytes ${start}-${start + blob.size - 1}/${total}`);
    xhr.upload.onprogress = (e) => onProgress(start + e.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the connection dropped"));
    xhr.send(blob);
  });
}

async function serverOffset(videoId) {
  const response = await api(`/videos/${videoId}/upload`);
  if (!response.ok) throw new Error(`cannot resume: ${response.status}`);
  return (await response.json()).received_bytes;
}

async function uploadFile(file, courseId) {
  const ui = uploadRow(file);
  const zone = document.getElementById("dropzone").dataset;
  const max = Number(zone.maxBytes);
  const chunkBytes = Number(zone.chunkBytes) || 8 * 1024 * 1024;
  if (file.size > max) { ui.label.textContent = "too large for the upload limit"; return; }
  // The same file dropped again after a closed tab or a crash resumes its upload.
  const resumeKey = `chronos-upload:${courseId}:${file.name}:${file.size}:${file.lastModified}`;
  let video = null;
  let offset = 0, failures = 0;
  const known = localStorage.getItem(resumeKey);
  if (known) {
    const state = await api(`/videos/${known}/upload`);
    if (state.ok) {
      const held = await state.json();
      video = { id: known };
      offset = held.received_bytes;
      ui.label.textContent = `resuming at ${Math.floor((offset / file.size) * 100)} %`;
    } else localStorage.removeItem(resumeKey);
  }
  if (!video) {
    const title = file.name.replace(/\.[^.]+$/, "") || file.name;
    const created = await api("/videos", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title, course_id: courseId, filename: file.name }) });
    if (!created.ok) { ui.label.textContent = (await created.json()).detail; return; }
    video = await created.json();
    localStorage.setItem(resumeKey, video.id);
  }
  ui.row.dataset.video = video.id;
  while (offset < file.size) {
    const end = Math.min(offset + chunkBytes, file.size);
    ui.label.textContent = `${Math.floor((offset / file.size) * 100)} %`;
    try {
      const xhr = await putRange(`/videos/${video.id}/content`, file.slice(offset, end), offset, file.size,
        (sent) => { ui.bar.value = sent; ui.label.textContent = `${Math.floor((sent / file.size) * 100)} %`; });
      if (xhr.status === 409 || xhr.status >= 500) { offset = await serverOffset(video.id); failures++; }
      else if (xhr.status >= 400) { ui.label.textContent = JSON.parse(xhr.responseText).detail; return; }
      else { offset = end; failures = 0; }
    } catch (error) {
      failures++;
      ui.label.textContent = `connection lost — resuming (${failures})…`;
      await new Promise((r) => setTimeout(r, Math.min(30000, 1000 * 2 ** failures)));
      try { offset = await serverOffset(video.id); } catch (_) { /* retry next loop */ }
    }
    if (failures > 8) { ui.label.textContent = "upload stopped; drop the same file again later to resume"; return; }
    ui.bar.value = offset;
  }
  const confirmed = await api(`/videos/${video.id}/confirm`, { method: "POST" });
  if (confirmed.ok || confirmed.status === 409) localStorage.removeItem(resumeKey);
  ui.label.textContent = confirmed.ok ? "uploaded — processing" : (await confirmed.json()).detail;
  ui.bar.value = file.size;
}

const dropzone = document.getElementById("dropzone");
if (dropzone) {
  const course = dropzone.dataset.course;
  const take = (files) => { for (const file of files) uploadFile(file, course); };
  dropzone.addEventListener("dragover", (e) => { e.preventDefault(); dropzone.classList.add("over"); });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (e) => { e.preventDefault(); dropzone.classList.remove("over"); take(e.dataTransfer.files); });
  dropzone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); document.getElementById("file-input").click(); } });
  document.getElementById("file-input").addEventListener("change", (e) => take(e.target.files));
}

// ---------------------------------------------------------------- lecture page
const player = document.getElementById("player");
if (player) {
  const lines = Array.from(document.querySelectorAll("#transcript [data-start]"));
  const starts = lines.map((line) => Number(line.dataset.start));
  let current = null;
  player.addEventListener("timeupdate", () => {
    const t = player.currentTime;
    let index = -1;
    for (let lo = 0, hi = starts.length - 1; lo <= hi;) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { index = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const line = index >= 0 ? lines[index] : null;
    if (line !== current) {
      current?.classList.remove("current");
      current?.removeAttribute("aria-current");
      line?.classList.add("current");
      line?.setAttribute("aria-current", "true");
      if (line && document.getElementById("follow")?.checked) line.scrollIntoView({ block: "nearest" });
      current = line;
    }
  });
  const seek = (seconds) => {
    const go = () => { player.currentTime = seconds; };
    if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
  };
  for (const line of lines) {
    line.addEventListener("click", () => { seek(Number(line.dataset.start)); player.play().catch(() => {}); });
    line.addEventListener("keydown", (e) => { if (e.key === "Enter") line.click(); });
  }
  const wanted = new URLSearchParams(location.search).get("t");
  if (wanted !== null) seek(Number(wanted));
  const search = document.getElementById("transcript-search");
  search?.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const line of lines) {
      const hit = !q || line.textContent.toLowerCase().includes(q);
      line.hidden = !hit;
      shown += hit ? 1 : 0;
    }
    document.getElementById("search-count").textContent = q ? `${shown} line${shown === 1 ? "" : "s"}` : "";
  });
}

// ---------------------------------------------------------------- chat
function referenceBadge(ref) {
  // A generative answer's claim its cited sentence does not support stays visible, flagged.
  if (ref.verified === false) {
    const label = `unverified · ${ref.title ? ref.title + " · " : ""}${ref.timestamp}`;
    const tip = `${ref.note}${ref.claim ? `: “${ref.claim}”` : ""}`;
    return ref.video_id
      ? el("a", { class: "ref unverified", href: `/app/lectures/${ref.video_id}?t=${ref.start_s}`, title: tip, text: label })
      : el("span", { class: "ref unverified", title: tip, text: label });
  }
  return el("a", { class: "ref", href: `/app/lectures/${ref.video_id}?t=${ref.start_s}`,
    title: ref.text, text: `${ref.title} · ${ref.timestamp}` });
}

async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      let name = "message"; const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
    }
  }
}

const chatForm = document.getElementById("chat-form");
if (chatForm) {
  const log = document.getElementById("messages");
  const isCreator = document.body.dataset.role === "creator";
  chatForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = chatForm.querySelector("textarea");
    const question = input.value.trim();
    if (!question) return;
    const button = chatForm.querySelector("button");
    button.disabled = true;
    log.append(el("li", { class: "msg user" }, el("p", { text: question })));
    const answerText = el("p", { class: "answer-text" });
    const refs = el("div", { class: "refs" });
    const meta = el("p", { class: "meta" });
    const item = el("li", { class: "msg assistant", "aria-busy": "true" }, answerText, refs, meta);
    log.append(item);
    const body = { question };
    if (chatForm.dataset.session) body.session_id = chatForm.dataset.session;
    if (chatForm.dataset.course) body.course_id = chatForm.dataset.course;
    try {
      const response = await api("/chat", { method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" }, body: JSON.stringify(body) });
      if (!response.ok) {
        answerText.textContent = (await response.json()).detail;
        item.classList.add("failed");
      } else {
        for await (const { name, data } of sseEvents(response)) {
          if (name === "answer") answerText.textContent += data.text;
          else if (name === "references") for (const ref of data) refs.append(referenceBadge(ref));
          else if (name === "done") {
            if (!chatForm.dataset.session) {
              chatForm.dataset.session = data.session_id;
              history.replaceState(null, "", `/app/chat/${data.session_id}`);
              const link = el("a", { href: `/app/chat/${data.session_id}`, "aria-current": "page",
                text: data.title || (question.length > 80 ? question.slice(0, 80) + "…" : question) });
              document.querySelector("ul.sessions")?.prepend(el("li", {}, link));
            }
            if (isCreator && "cost_usd" in data) {
              meta.textContent = `cost ${usd(data.cost_usd)}`;
              const total = document.getElementById("session-total");
              if (total) { total.dataset.usd = String(Number(total.dataset.usd || 0) + Number(data.cost_usd)); total.textContent = usd(total.dataset.usd); }
            }
          } else if (name === "error") { answerText.textContent += ` (${data.detail})`; item.classList.add("failed"); }
        }
      }
    } finally {
      item.removeAttribute("aria-busy");
      button.disabled = false;
      input.value = "";
      input.focus();
    }
  });
  chatForm.querySelector("textarea").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); chatForm.requestSubmit(); }
  });
}
