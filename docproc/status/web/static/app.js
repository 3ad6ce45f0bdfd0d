// The status page: reads /api/stats and /api/documents every few seconds and draws them.
"use strict";

const REFRESH_MS = 3000;
const STATES = ["queued", "running", "done", "failed", "duplicate", "retried"];
const NEWEST = 24;
const FAILURES = 50;
// Why the watcher waits on a file, in words, and what that means (docproc/inbox/candidates.py).
const WAIT_REASONS = {
  open_for_writing: ["open for writing", "a writer has it open and wrote to it"],
  quiet_period: ["quiet period after close",
                 "its writer closed it; a short wait in case it reopens it (scanners append a page per reopen)"],
  incomplete: ["incomplete structure",
               "its structure is not whole yet (a PDF without %%EOF); it fails as truncated if it stays so"],
  settling: ["settling", "waiting for its size and time to stay unchanged (watcher.settle_seconds)"],
  empty: ["empty, waiting for content", "a 0-byte file waits watcher.empty_grace_seconds for content"],
};
let lastDocuments = "";
let lastFailures = "";

// Build an element; strings become text nodes, never HTML (file names come from anyone).
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

// SI units, as `docproc status` prints them (docproc/units.py).
function bytes(value) {
  if (!value) return "0 B";
  const units = ["B", "kB", "MB", "GB", "TB"];
  const power = Math.min(units.length - 1, Math.floor(Math.log10(value) / 3));
  return `${(value / 1000 ** power).toFixed(power ? 1 : 0)} ${units[power]}`;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.reload();  // the server shows its sign-in form
    throw new Error("not signed in");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

function toast(message, isError) {
  const node = document.getElementById("toast");
  node.textContent = message;
  node.className = isError ? "toast error" : "toast";
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 6000);
}

function drawCounts(counts) {
  document.getElementById("counts").replaceChildren(...STATES.map((state) =>
    h("div", { class: `tile ${state}`, "data-state": state },
      h("div", { class: "n" }, (counts[state] || 0).toLocaleString()),
      h("div", { class: "label" }, state))));
}

function drawThroughput(throughput) {
  document.getElementById("rates").replaceChildren(
    ...[["last_1m", "last minute"], ["last_5m", "5 minutes"], ["last_15m", "15 minutes"]].map(
      ([name, label]) => h("span", {}, h("b", {}, throughput[name]), ` ${label}`)));
  const minutes = throughput.per_minute;
  const width = 600, height = 100, bottom = 88;
  const highest = Math.max(1, ...minutes.map((m) => m.done + m.duplicate + m.failed));
  const bar = width / minutes.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                             role: "img" });
  minutes.forEach((minute, index) => {
    let top = bottom;
    for (const state of ["done", "duplicate", "failed"]) {
      const tall = (minute[state] / highest) * (bottom - 4);
      if (!tall) continue;
      top -= tall;
      const rect = svg("rect", { x: index * bar + 0.5, y: top, width: Math.max(1, bar - 1),
                                 height: tall, class: state });
      const title = svg("title", {});
      title.textContent = `${new Date(minute.minute).toLocaleTimeString()}: ${minute[state]} ${state}`;
      rect.append(title);
      chart.append(rect);
    }
  });
  chart.append(svg("line", { x1: 0, x2: width, y1: bottom + 0.5, y2: bottom + 0.5,
                             stroke: "#e4e7ec" }));
  const label = (x, anchor, text) => {
    const node = svg("text", { x, y: height - 1, "text-anchor": anchor });
    node.textContent = text;
    return node;
  };
  chart.append(label(0, "start", "1 h ago"), label(width, "end", "now"));
  const peak = svg("text", { x: 2, y: 10 });
  peak.textContent = `${highest}/min`;
  chart.append(peak);
  document.getElementById("chart").replaceChildren(chart);
}

function drawBacklog(stats) {
  const queues = stats.queues, watcher = stats.watcher, oldest = stats.oldest_unfinished;
  const facts = [
    ...Object.entries(queues).map(([queue, depth]) =>
      [`queue ${queue}`, depth === null ? "unknown" : `${depth} tasks`]),
    ["waiting in the inbox", watcher.online ? watcher.backlog : "no watcher online"],
    ...(watcher.inbox && watcher.inbox.state === "missing"
      ? [["inbox", `missing (${watcher.inbox.reason}) since ${new Date(watcher.inbox.since).toLocaleString()}: dropped files are not seen`]]
      : []),
    ["claimed, in the spool", `${stats.spool.files} (${bytes(stats.spool.bytes)})`],
    ["OCR", `${stats.ocr.pages_per_minute} pages a minute (5 min), ${stats.ocr.pages} read in all`],
    ["oldest unfinished", oldest ? `${Math.round(oldest.age_seconds)} s` : "none"],
  ];
  const held = document.getElementById("held");
  held.hidden = !stats.held.count;
  held.textContent = stats.held.count
    ? `Outbox not writable since ${new Date(stats.held.since).toLocaleString()}: ` +
      `${stats.held.count} documents held, they go on by themselves once it is. ` +
      visible(stats.held.reason || "")
    : "";
  document.getElementById("backlog").replaceChildren(
    ...facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

// Control and bidirectional characters as escapes: a name cannot disguise itself.
function visible(name) {
  return String(name).replace(/[\p{Cc}\p{Cf}]/gu,
    (c) => `\\u${c.codePointAt(0).toString(16).padStart(4, "0")}`);
}

function waited(file) {
  const seconds = file.waiting_seconds;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `since ${new Date(file.since).toLocaleString()}`;
}

function drawWaiting(watcher) {
  const files = watcher.waiting || [];
  const total = Object.values(watcher.waiting_by_reason || {}).reduce((a, b) => a + b, 0);
  document.getElementById("waiting").hidden = files.length === 0;
  document.getElementById("no-waiting").hidden = files.length > 0;
  document.getElementById("more-waiting").textContent = total > files.length
    ? `Showing the ${files.length} waiting longest of ${total}.` : "";
  document.querySelector("#waiting tbody").replaceChildren(...files.map((file) => {
    const [words, meaning] = WAIT_REASONS[file.reason] || [file.reason, ""];
    return h("tr", { "data-reason": file.reason },
      h("td", { class: "path-cell" }, visible(file.relpath)),
      h("td", { class: "num" }, bytes(file.bytes)),
      h("td", { class: "when", title: file.since || "" }, waited(file)),
      h("td", { title: meaning }, words));
  }));
}

function drawWorkers(workers) {
  const list = document.getElementById("workers");
  if (!workers.length) {
    list.replaceChildren(h("li", { class: "muted" }, "no worker online"));
    return;
  }
  list.replaceChildren(...workers.map((worker) =>
    h("li", { title: worker.node }, worker.name, " ",
      h("span", { class: "muted" }, `holding ${worker.holding}`))));
}

function drawHealth(stats) {
  const node = document.getElementById("health");
  const workers = stats.workers.length;
  node.textContent = workers ? `${workers} worker${workers > 1 ? "s" : ""} online`
                             : "no worker online";
  node.className = workers ? "pill ok" : "pill bad";
  document.getElementById("updated").textContent =
    `updated ${new Date().toLocaleTimeString()}, every ${REFRESH_MS / 1000} s`;
}

function drawTimings(stages) {
  document.querySelector("#timings tbody").replaceChildren(
    ...Object.entries(stages).map(([stage, t]) => h("tr", {},
      h("td", {}, stage), h("td", { class: "num" }, t.count),
      h("td", { class: "num" }, ms(t.p50_ms)), h("td", { class: "num" }, ms(t.p95_ms)),
      h("td", { class: "num" }, ms(t.mean_ms)),
      h("td", { class: "num" }, t.last_15m_mean_ms === undefined ? "" : ms(t.last_15m_mean_ms)))));
}

async function retry(key, button) {
  button.disabled = true;
  button.textContent = "sending…";
  try {
    const body = await api(`/api/documents/${encodeURIComponent(key)}/retry`, {
      method: "POST", headers: { "X-Requested-With": "docproc" } });
    toast(body.message);
    button.closest("tr")?.remove();
    await refresh();
  } catch (error) {
    toast(`Retry failed: ${error.message}`, true);
    button.disabled = false;
    button.textContent = "Retry";
  }
}

function drawFailures(failures, total) {
  const signature = JSON.stringify([failures, total]);
  if (signature === lastFailures) return;
  lastFailures = signature;
  document.getElementById("no-failures").hidden = failures.length > 0;
  document.getElementById("more-failures").textContent = total > failures.length
    ? `Showing the newest ${failures.length} of ${total}; docproc retry --all-failed sends them all.`
    : "";
  document.querySelector("#failures tbody").replaceChildren(...failures.map((doc) => {
    const error = doc.error || {};
    const button = h("button", { class: "retry", "data-key": doc.key }, "Retry");
    button.addEventListener("click", () => retry(doc.key, button));
    return h("tr", { "data-key": doc.key },
      h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); openDetail(doc.key); } },
                    doc.name), h("div", { class: "path" }, doc.relpath)),
      h("td", { class: "when", title: doc.finished_at || "" }, ago(doc.finished_at)),
      h("td", {}, error.stage || ""),
      h("td", {}, h("b", {}, error.type || doc.error_type || ""), " ", error.message || ""),
      h("td", {}, button));
  }));
}

function picture(doc) {
  if (doc.has_thumbnail) {
    return h("img", { class: "thumb", alt: `thumbnail of ${doc.name}`, loading: "lazy",
                      src: `/api/documents/${encodeURIComponent(doc.key)}/thumbnail` });
  }
  return h("span", { class: "kind" }, doc.kind || doc.status);
}

function drawDocuments(documents) {
  const signature = JSON.stringify(documents);
  if (signature === lastDocuments) return;
  lastDocuments = signature;
  document.getElementById("no-documents").hidden = documents.length > 0;
  document.getElementById("documents").replaceChildren(...documents.map((doc) =>
    h("div", { class: "doc", "data-key": doc.key, "data-status": doc.status,
               title: doc.relpath, onclick: () => openDetail(doc.key) },
      h("div", { class: "picture" }, picture(doc)),
      h("div", { class: "name" }, doc.name),
      h("div", {}, h("span", { class: `badge ${doc.status}` }, doc.status), " ",
        h("span", { class: "muted" },
          doc.status === "running" ? doc.stage : [doc.kind, doc.pages ? `${doc.pages} p.` : null]
            .filter(Boolean).join(", "))),
      h("div", { class: "muted" }, ago(doc.finished_at || doc.received_at)))));
}

async function openDetail(key) {
  const dialog = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  try {
    const doc = await api(`/api/documents/${encodeURIComponent(key)}`);
    const error = doc.error;
    body.replaceChildren(...[
      h("h2", {}, doc.name, " ", h("span", { class: `badge ${doc.status}` }, doc.status)),
      h("p", { class: "muted" }, doc.relpath, ` · ${bytes(doc.bytes)} · key ${doc.key}`),
      error ? h("p", { class: "banner" }, `${error.stage || ""} ${error.type}: ${error.message || ""}`) : null,
      doc.duplicate_of ? h("p", {}, `Same content as ${doc.duplicate_of}.`) : null,
      doc.retried_as ? h("p", {}, `Sent again as ${doc.retried_as}.`) : null,
      h("table", { class: "steps" },
        h("thead", {}, h("tr", {}, h("th", {}, "stage"), h("th", {}, "state"),
                         h("th", {}, "started"), h("th", { class: "num" }, "took"))),
        h("tbody", {}, doc.progress.map((step) => h("tr", {},
          h("td", {}, step.stage),
          h("td", { class: `state-${step.state}` }, step.state,
            step.pages_total ? ` ${step.pages_done}/${step.pages_total} pages` : ""),
          h("td", {}, step.started_at ? new Date(step.started_at).toLocaleTimeString() : ""),
          h("td", { class: "num" }, ms(step.duration_ms)))))),
      h("p", {}, `worker ${doc.worker || "–"} · retries ${doc.retries} · received `,
        doc.received_at ? new Date(doc.received_at).toLocaleString() : "–"),
      h("p", {},
        doc.links.text ? h("a", { href: doc.links.text, target: "_blank" }, "text") : null, " ",
        h("a", { href: doc.links.self, target: "_blank" }, "report (JSON)")),
    ].filter(Boolean));
    if (!dialog.open) dialog.showModal();
  } catch (error) {
    toast(error.message, true);
  }
}

async function refresh() {
  try {
    const [stats, listing, failed] = await Promise.all([
      api("/api/stats"), api(`/api/documents?limit=${NEWEST}`),
      api(`/api/documents?status=failed&limit=${FAILURES}`)]);
    document.getElementById("problem").hidden = true;
    drawHealth(stats);
    drawCounts(stats.counts);
    drawThroughput(stats.throughput);
    drawBacklog(stats);
    drawWaiting(stats.watcher);
    drawWorkers(stats.workers);
    drawTimings(stats.stages);
    drawFailures(failed.documents, stats.counts.failed);
    drawDocuments(listing.documents);
  } catch (error) {
    const problem = document.getElementById("problem");
    problem.textContent = `Cannot read the status: ${error.message}`;
    problem.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  setInterval(refresh, REFRESH_MS);
});
