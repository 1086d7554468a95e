// cbcore dashboard (docs/api.md, "Dashboard"): plain JavaScript, no build
// step, nothing fetched from anywhere but this cb-api. Pages: #/jobs,
// #/job/TENANT/JOB, #/backends, #/slas, #/sla/TENANT/ID. Updates arrive by server-sent events, read
// with fetch() so that the bearer token goes in a header, never in a URL.
"use strict";

const main = document.getElementById("main");
let token = localStorage.getItem("cb-token") || "";
let streams = []; // open event streams of the page shown

// ---- the API ------------------------------------------------------------

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path) {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 401) {
    askToken();
    throw new Error("a token is needed");
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
  return body;
}

// Every page of a paginated route: its items (key) up to max.
async function all(path, key, max) {
  let out = [], after = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(path + sep + "limit=1000" + (after !== null ? "&after=" + encodeURIComponent(after) : ""));
    out = out.concat(page[key]);
    if (page.next === null || page.next === undefined || out.length >= max) return out;
    after = page.next;
  }
}

// Server-sent events through fetch: on(eventName, data) for each event.
function sse(path, on) {
  const ctl = new AbortController();
  const live = document.getElementById("live");
  (async () => {
    try {
      const r = await fetch(path, { headers: headers(), signal: ctl.signal });
      if (!r.ok || !r.body) return;
      live.classList.add("on");
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          try { on(name, JSON.parse(data)); } catch (e) { /* not JSON: skip */ }
        }
      }
    } catch (e) { /* aborted, or the server went */ }
  })();
  const s = { close: () => ctl.abort() };
  streams.push(s);
  return s;
}

function closeStreams() {
  streams.forEach((s) => s.close());
  streams = [];
  document.getElementById("live").classList.remove("on");
}

function askToken() {
  const f = document.getElementById("token-form");
  f.hidden = false;
}

document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = document.getElementById("token").value.trim();
  localStorage.setItem("cb-token", token);
  document.getElementById("token-form").hidden = true;
  route();
});

// ---- helpers ----------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "style") // through the CSSOM: the policy forbids style attributes
      for (const decl of v.split(";")) {
        const i = decl.indexOf(":");
        if (i > 0) e.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
      }
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function state(s) {
  return el("span", { class: "state state-" + s, text: s });
}

function when(t) {
  return t ? new Date(t).toLocaleString() : "";
}

function secs(a, b) {
  if (!a) return "";
  const d = ((b ? new Date(b) : new Date()) - new Date(a)) / 1000;
  return d < 60 ? d.toFixed(2) + " s" : (d / 60).toFixed(1) + " min";
}

function progress(c) {
  const pct = c.total ? Math.round((100 * c.succeeded) / c.total) : 0;
  const bar = el("div", { class: "bar", title: c.succeeded + " / " + c.total });
  bar.append(el("span", { style: "width:" + pct + "%" }));
  return bar;
}

// ---- the jobs page ------------------------------------------------------------

const JOB_STATES = ["", "submitted", "running", "suspended", "succeeded", "failed", "cancelled", "rejected"];

async function jobsPage(params) {
  const form = el("form", { class: "filters", id: "filters" },
    el("input", { name: "tenant", placeholder: "tenant", value: params.get("tenant") || "" }),
    (() => {
      const s = el("select", { name: "state" });
      for (const st of JOB_STATES) s.append(el("option", { value: st, text: st || "any state" }));
      s.value = params.get("state") || "";
      return s;
    })(),
    el("input", { name: "label", placeholder: "label=value", value: params.get("label") || "" }),
    el("button", { type: "submit", text: "Filter" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ["tenant", "state", "label"]) if (form[k].value) q.set(k, form[k].value);
    location.hash = "#/jobs" + (q.toString() ? "?" + q : "");
  });
  const tbody = el("tbody");
  const table = el("table", { id: "jobs-table" },
    el("thead", {}, el("tr", {},
      el("th", { text: "job" }), el("th", { text: "tenant" }), el("th", { class: "opt", text: "kind" }),
      el("th", { text: "state" }), el("th", { text: "progress" }), el("th", { class: "opt", text: "tasks" }),
      el("th", { class: "opt", text: "submitted" }), el("th", { class: "opt", text: "took" }))),
    tbody);
  main.replaceChildren(el("h1", { text: "Jobs" }), form, el("div", { class: "table-wrap" }, table));
  const q = new URLSearchParams();
  for (const k of ["tenant", "state", "label"]) if (params.get(k)) q.set(k, params.get(k));
  const jobs = await all("/v1/jobs" + (q.toString() ? "?" + q : ""), "jobs", 2000);
  const rows = new Map();
  for (const j of jobs) {
    const tr = jobRow(j);
    rows.set(j.tenant + "/" + j.job_id, tr);
    tbody.append(tr);
  }
  if (!jobs.length) tbody.append(el("tr", {}, el("td", { colspan: "8", class: "muted", text: "no jobs" })));
  // live: each tenant shown (or filtered on) pushes its jobs' progress and ends
  const tenants = new Set(jobs.map((j) => j.tenant));
  if (params.get("tenant")) tenants.add(params.get("tenant"));
  let refetch = null;
  for (const t of tenants) {
    sse("/v1/tenants/" + encodeURIComponent(t) + "/stream", (name, d) => {
      const tr = rows.get(d.tenant + "/" + d.job_id);
      if (!tr) { // a new job: show the list again (at most once a second)
        if (!refetch) refetch = setTimeout(() => route(), 1000);
        return;
      }
      tr.querySelector(".st").replaceChildren(state(d.status));
      tr.dataset.state = d.status;
      const c = d.counts || { total: d.total, succeeded: d.succeeded };
      if (c && c.total !== undefined) {
        tr.querySelector(".pg").replaceChildren(progress(c));
        tr.querySelector(".tk").textContent = c.succeeded + " / " + c.total;
      }
    });
  }
}

function jobRow(j) {
  const href = "#/job/" + encodeURIComponent(j.tenant) + "/" + encodeURIComponent(j.job_id);
  const tr = el("tr", { "data-job": j.tenant + "/" + j.job_id, "data-state": j.status },
    el("td", {}, el("a", { href, text: j.job_id })),
    el("td", { text: j.tenant }),
    el("td", { class: "opt", text: j.kind || "" }),
    el("td", { class: "st" }, state(j.status)),
    el("td", { class: "pg" }, progress(j.counts)),
    el("td", { class: "opt tk", text: j.counts.succeeded + " / " + j.counts.total }),
    el("td", { class: "opt", text: when(j.timings.submitted) }),
    el("td", { class: "opt", text: secs(j.timings.started, j.timings.finished) }));
  return tr;
}

// ---- a job's page -----------------------------------------------------------

async function jobPage(tenant, jobId) {
  const base = "/v1/jobs/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(jobId);
  const job = await api(base);
  const [events, tasks] = await Promise.all([all(base + "/events", "events", 200000),
    all(base + "/tasks", "tasks", 200000)]);
  const spec = (events.find((e) => e.event.type === "cb.job.submitted") || { event: { data: {} } }).event.data.job || {};
  const counts = el("div", { class: "kv", id: "job-counts" });
  const fillCounts = (c) => counts.replaceChildren(...["total", "succeeded", "running", "failed", "waiting", "retries"]
    .filter((k) => c[k] !== undefined).map((k) => el("div", {}, el("b", { text: String(c[k]) }), k)));
  fillCounts(job.counts);
  const status = el("span", { id: "job-status" }, state(job.status));
  const bar = el("div", { id: "job-progress" }, progress(job.counts));
  main.replaceChildren(
    el("h1", { id: "job-title", text: tenant + " / " + jobId }),
    el("p", {}, status, " ", el("span", { class: "muted", text: (job.kind || "") + " · submitted " +
      when(job.timings.submitted) + (job.timings.finished ? " · took " + secs(job.timings.started, job.timings.finished) : "") })),
    bar, el("br"), counts);
  if (job.error) main.append(el("h2", { text: "Error" }), el("pre", { id: "job-error", text: job.error }));
  main.append(el("h2", { text: "Tasks over time (per backend)" }), gantt(events, job, spec));
  if (job.kind === "dag" && spec.tasks) main.append(el("h2", { text: "Steps" }), dag(spec, tasks));
  main.append(el("h2", { text: "Errors" }), errors(events, tasks));
  const result = el("div", { id: "result", class: "card" });
  main.append(el("h2", { text: "Result" }), result);
  showResult(result, base, job);
  main.append(el("h2", { text: "Timeline (" + events.length + " events)" }), timeline(events));
  if (job.status === "succeeded" || job.status === "failed" || job.status === "cancelled" || job.status === "rejected") return;
  sse(base + "/stream", (name, d) => {
    if (name === "progress") {
      const c = { total: d.total, succeeded: d.succeeded, running: d.running, failed: d.failed };
      status.replaceChildren(state(d.status));
      bar.replaceChildren(progress(c));
      fillCounts(Object.assign({}, job.counts, Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined))));
    } else if (name === "done") {
      setTimeout(() => route(), 300); // the whole page again, from the store and the log
    }
  });
}

// A bar per task attempt from its dispatch to its end, in lanes per backend;
// bars that overlap in time go on separate rows of their lane.
function gantt(events, job, spec) {
  // a task's backend: the dispatch says it; else the job's (a dag: its step's)
  const steps = spec.tasks ? Object.keys(spec.tasks).sort() : [];
  const backendOf = (task) => {
    const f = spec.tasks ? (spec.tasks[steps[task]] || {}).function : spec.function;
    return (f && f.backend) || "?";
  };
  const t0 = new Date(job.timings.submitted || (events[0] && events[0].event.time)).getTime();
  const attempts = new Map(); // "task/attempt" -> {start, end, backend, ok}
  let tEnd = t0 + 1;
  for (const { event: e } of events) {
    const t = new Date(e.time).getTime();
    tEnd = Math.max(tEnd, t);
    if (e.type === "cb.tasks.dispatched") {
      for (const x of e.data.tasks || [])
        attempts.set(x.task + "/" + x.attempt, { task: x.task, start: t, end: null, backend: e.data.backend || backendOf(x.task), ok: null });
    } else if (/^cb\.task\.(succeeded|failed|timed_out)$/.test(e.type) || e.type === "cb.tasks.succeeded") {
      // cb.tasks.succeeded: several successes of one command in one event
      const outcomes = e.type === "cb.tasks.succeeded" ? e.data.tasks || [] : [e.data];
      for (const o of outcomes) {
        const a = attempts.get(o.task + "/" + o.attempt);
        if (a && a.end === null) { a.end = t; a.ok = e.type !== "cb.task.failed" && e.type !== "cb.task.timed_out"; }
      }
    }
  }
  const now = job.timings.finished ? tEnd : Math.max(tEnd, Date.now());
  const lanes = new Map(); // backend -> [row end times]
  const placed = [];
  for (const a of [...attempts.values()].sort((x, y) => x.start - y.start)) {
    const end = a.end === null ? now : a.end;
    if (!lanes.has(a.backend)) lanes.set(a.backend, []);
    const rows = lanes.get(a.backend);
    let r = rows.findIndex((e) => e <= a.start);
    if (r < 0) { r = rows.length; rows.push(0); }
    rows[r] = end;
    placed.push({ a, end, row: r });
  }
  const rowH = placed.length > 300 ? 3 : 8, gap = 18, left = 90, width = 900;
  let y = 20;
  const laneY = new Map();
  for (const [b, rows] of lanes) { laneY.set(b, y); y += rows.length * rowH + gap; }
  const s = svg("svg", { id: "gantt", viewBox: "0 0 " + (left + width + 10) + " " + Math.max(y, 40), width: "100%",
    "data-bars": String(placed.length) });
  const span = Math.max(now - t0, 1);
  for (const [b, ly] of laneY) {
    const lab = svg("text", { x: 4, y: ly + 10, class: "lane" });
    lab.textContent = b;
    s.append(lab);
  }
  for (const { a, end, row } of placed) {
    const x = left + ((a.start - t0) / span) * width, w = Math.max(((end - a.start) / span) * width, 1);
    const rect = svg("rect", { x: x.toFixed(1), y: laneY.get(a.backend) + row * rowH, width: w.toFixed(1),
      height: Math.max(rowH - 1, 2), class: "bar " + (a.ok === null ? "bar-run" : a.ok ? "bar-ok" : "bar-fail"),
      "data-task": String(a.task) });
    const title = svg("title");
    title.textContent = "task " + a.task + ": " + ((end - a.start) / 1000).toFixed(3) + " s";
    rect.append(title);
    s.append(rect);
  }
  const axis = svg("text", { x: left, y: 12 });
  axis.textContent = "0 s … " + (span / 1000).toFixed(2) + " s";
  s.append(axis);
  return s;
}

// The steps of a dag job (one task per step, in the order of the steps'
// names: engine/flow.h) in columns by depth, with their dependencies.
function dag(spec, tasks) {
  const names = Object.keys(spec.tasks).sort();
  const byIndex = new Map(tasks.map((t) => [t.index, t]));
  const deps = (n) => {
    const s = spec.tasks[n], d = new Set(s.depends || []);
    for (const f of [].concat(s.input_from || [])) d.add(f);
    if (s.foreach) d.add(typeof s.foreach === "string" ? s.foreach : s.foreach.step);
    if (s.when && s.when.step) d.add(s.when.step);
    return [...d].filter((x) => spec.tasks[x]);
  };
  const depth = new Map();
  const depthOf = (n, seen = new Set()) => {
    if (depth.has(n)) return depth.get(n);
    if (seen.has(n)) return 0;
    seen.add(n);
    const d = deps(n).reduce((m, x) => Math.max(m, depthOf(x, seen) + 1), 0);
    depth.set(n, d);
    return d;
  };
  names.forEach((n) => depthOf(n));
  const cols = new Map();
  for (const n of names) {
    const d = depth.get(n);
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(n);
  }
  const W = 130, H = 34, gx = 50, gy = 16, pos = new Map();
  let maxRows = 1;
  for (const [d, list] of cols) {
    list.forEach((n, i) => pos.set(n, { x: 10 + d * (W + gx), y: 10 + i * (H + gy) }));
    maxRows = Math.max(maxRows, list.length);
  }
  const vw = 20 + cols.size * (W + gx), vh = 20 + maxRows * (H + gy);
  const s = svg("svg", { id: "dag", width: vw, height: vh, viewBox: "0 0 " + vw + " " + vh });
  for (const n of names) for (const d of deps(n)) {
    const a = pos.get(d), b = pos.get(n);
    s.append(svg("path", { class: "edge", d: `M${a.x + W},${a.y + H / 2} C${a.x + W + gx / 2},${a.y + H / 2} ${b.x - gx / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}` }));
  }
  const colors = { succeeded: "#bbf7d0", failed: "#fecaca", timed_out: "#fecaca", running: "#bfdbfe", dispatched: "#bfdbfe",
    skipped: "#e5e7eb", retry_wait: "#fde68a", expanded: "#bbf7d0", pending: "#f3f4f6" };
  names.forEach((n, i) => {
    const t = byIndex.get(i), st = t ? t.status : "pending", p = pos.get(n);
    const g = svg("g", { class: "node", "data-step": n, "data-state": st });
    g.append(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 5, fill: colors[st] || "#f3f4f6" }));
    const label = svg("text", { x: p.x + 8, y: p.y + 14 });
    label.textContent = n;
    const sub = svg("text", { x: p.x + 8, y: p.y + 28 });
    sub.textContent = st;
    g.append(label, sub);
    s.append(g);
  });
  return s;
}

function errors(events, tasks) {
  const ul = el("ul", { class: "errors", id: "errors" });
  for (const { event: e } of events) {
    if (e.type !== "cb.task.failed" && e.type !== "cb.task.timed_out") continue;
    ul.append(el("li", {}, el("b", { text: "task " + e.data.task + " attempt " + e.data.attempt + ": " }),
      e.data.error || e.type, e.data.stderr ? el("pre", { text: e.data.stderr }) : null));
    if (ul.children.length >= 200) break;
  }
  if (!ul.children.length) {
    const failed = tasks.filter((t) => t.error && (t.status === "failed" || t.status === "timed_out"));
    for (const t of failed.slice(0, 200)) ul.append(el("li", {}, el("b", { text: "task " + t.index + ": " }), t.error));
  }
  if (!ul.children.length) ul.append(el("li", { class: "muted", text: "none" }));
  return ul;
}

async function showResult(box, base, job) {
  if (job.status !== "succeeded") {
    box.textContent = job.status === "failed" || job.status === "cancelled" || job.status === "rejected"
      ? "no result: the job " + job.status : "not finished";
    return;
  }
  try {
    const r = await fetch(base + "/result", { headers: headers() });
    const blob = await r.blob();
    const a = el("a", { id: "result-download", href: URL.createObjectURL(blob), download: job.job_id + "-result.json",
      text: "download (" + blob.size + " bytes)" });
    const text = await blob.slice(0, 4096).text();
    box.replaceChildren(a, el("pre", { id: "result-preview", text: text + (blob.size > 4096 ? "\n…" : "") }));
  } catch (e) {
    box.textContent = "cannot read the result: " + e.message;
  }
}

function timeline(events) {
  const t0 = events.length ? new Date(events[0].event.time).getTime() : 0;
  const tbody = el("tbody");
  const SHOWN = 200;
  for (const { seq, event: e } of events.slice(0, SHOWN)) {
    const d = e.data || {};
    const detail = d.error || (Array.isArray(d.tasks) ? d.tasks.length + " dispatched" + (d.backend ? " to " + d.backend : "")
      : typeof d.tasks === "number" ? d.tasks + " tasks" : "") ||
      (d.output !== undefined ? JSON.stringify(d.output).slice(0, 80) : "") || d.reason || "";
    tbody.append(el("tr", {}, el("td", { text: String(seq) }),
      el("td", { text: "+" + ((new Date(e.time).getTime() - t0) / 1000).toFixed(3) + " s" }),
      el("td", { text: e.type }),
      el("td", { text: d.task !== undefined ? String(d.task) + (d.attempt !== undefined ? "/" + d.attempt : "") : "" }),
      el("td", { class: "wrap", text: detail })));
  }
  const more = events.length > SHOWN
    ? el("p", { class: "muted", text: "… and " + (events.length - SHOWN) + " more events (GET …/events has them all, in pages)" })
    : null;
  return el("div", { class: "table-wrap" }, el("table", { id: "timeline", "data-events": String(events.length) },
    el("thead", {}, el("tr", {}, el("th", { text: "seq" }), el("th", { text: "at" }), el("th", { text: "event" }),
      el("th", { text: "task" }), el("th", { text: "detail" }))), tbody), more);
}

// ---- the backends page ----------------------------------------------------

async function backendsPage() {
  const tbody = el("tbody");
  main.replaceChildren(el("h1", { text: "Backends" }),
    el("p", { class: "muted", text: "Each adapter's invocations in flight against its account's limits, and what its backend throttled. Reports come every few seconds." }),
    el("div", { class: "table-wrap" }, el("table", { id: "backends-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "backend" }), el("th", { text: "adapter" }), el("th", { text: "up" }),
        el("th", { text: "in flight" }), el("th", { text: "limit" }), el("th", { class: "opt", text: "rate/s" }),
        el("th", { text: "succeeded" }), el("th", { text: "failed" }), el("th", { text: "throttled" }))), tbody)));
  const rows = new Map();
  const show = (rep, up) => {
    const a = rep.adapter;
    if (!a) return;
    const key = rep.id;
    const limit = a.max_concurrency || 0;
    const tr = el("tr", { "data-adapter": rep.id, "data-backend": a.backend },
      el("td", { text: a.backend }), el("td", { text: rep.id }), el("td", { text: up ? "yes" : "no" }),
      el("td", {}, String(a.running) + " ", (() => {
        const b = el("div", { class: "bar" });
        b.append(el("span", { style: "width:" + (limit ? Math.min(100, (100 * a.running) / limit) : 0) + "%" }));
        return b;
      })()),
      el("td", { text: limit ? String(limit) : "none" }), el("td", { class: "opt", text: a.rate_per_s ? String(a.rate_per_s) : "none" }),
      el("td", { text: String(a.succeeded) }), el("td", { text: String(a.failed) }), el("td", { text: String(a.throttled) }));
    if (rows.has(key)) rows.get(key).replaceWith(tr); else tbody.append(tr);
    rows.set(key, tr);
  };
  const d = await api("/v1/daemons");
  for (const x of d.daemons) show(x.report, x.up);
  sse("/v1/daemons/stream", (name, rep) => { if (name === "report") show(rep, true); });
}

// ---- the SLA pages -------------------------------------------------------------
// #/slas?tenant=T: a tenant's agreements, their state and compliance;
// #/sla/T/A: one agreement's guarantees with their counts and its recent
// breaches, recoveries and warnings. Both read again every 5 s.

function every(ms) {
  const id = setInterval(() => route(), ms);
  streams.push({ close: () => clearInterval(id) });
}

function compliance(ok) {
  return el("span", { class: "state state-" + (ok ? "succeeded" : "failed"), text: ok ? "compliant" : "breached" });
}

async function slasPage(params) {
  const tenant = params.get("tenant") || localStorage.getItem("cb-sla-tenant") || "";
  const form = el("form", { class: "filters", id: "sla-filters" },
    el("input", { name: "tenant", placeholder: "tenant", value: tenant }),
    el("button", { type: "submit", text: "Show" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("cb-sla-tenant", form.tenant.value);
    location.hash = "#/slas?tenant=" + encodeURIComponent(form.tenant.value);
  });
  const tbody = el("tbody");
  main.replaceChildren(el("h1", { text: "Agreements" }),
    el("p", { class: "muted", text: "A tenant's SLA agreements (docs/sla.md), evaluated by cb-sla over the event log." }),
    form, el("div", { class: "table-wrap" }, el("table", { id: "slas-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "agreement" }), el("th", { text: "state" }),
        el("th", { text: "compliance" }), el("th", { text: "breaches" }), el("th", { class: "opt", text: "guarantees" }),
        el("th", { class: "opt", text: "version" }))), tbody)));
  if (!tenant) {
    tbody.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "name a tenant" })));
    return;
  }
  const d = await api("/v1/tenants/" + encodeURIComponent(tenant) + "/slas");
  for (const a of d.agreements) {
    tbody.append(el("tr", { "data-agreement": a.id, "data-compliant": String(a.compliant) },
      el("td", {}, el("a", { href: "#/sla/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(a.id), text: a.id }),
        a.type === "template" ? el("span", { class: "muted", text: " (template)" }) : null),
      el("td", {}, state(a.state)),
      el("td", {}, a.type === "template" ? "" : compliance(a.compliant)),
      el("td", { class: "breaches", text: String(a.breaches) }),
      el("td", { class: "opt", text: a.guarantees.map((g) => g.name + ": " + g.constraint).join("; ") }),
      el("td", { class: "opt", text: String(a.version) })));
  }
  if (!d.agreements.length) tbody.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "no agreements" })));
  every(5000);
}

async function slaPage(tenant, id) {
  const a = await api("/v1/tenants/" + encodeURIComponent(tenant) + "/slas/" + encodeURIComponent(id));
  const gs = el("tbody");
  for (const g of a.guarantees)
    gs.append(el("tr", { "data-guarantee": g.name },
      el("td", { text: g.name }), el("td", { class: "mono", text: g.constraint }),
      el("td", {}, compliance(g.compliant)), el("td", { text: String(g.evaluations) }),
      el("td", { text: String(g.violations) }), el("td", { class: "breaches", text: String(g.breaches) })));
  const recent = el("tbody");
  for (const r of (a.recent || []).slice().reverse())
    recent.append(el("tr", { "data-kind": r.kind },
      el("td", { text: when(r.time) }),
      el("td", {}, el("span", { class: "state state-" + (r.kind === "recovered" ? "succeeded" : r.kind === "at_risk" ? "suspended" : "failed"), text: r.kind.replace("_", " ") })),
      el("td", { text: r.guarantee + (r.ordinal ? " #" + r.ordinal : "") }),
      el("td", {}, r.job && r.job !== "_sla" ? el("a", { href: "#/job/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(r.job), text: r.job }) : "periodic"),
      el("td", { text: r.observed !== undefined ? String(Math.round(r.observed * 100) / 100) : "" })));
  if (!(a.recent || []).length) recent.append(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "no breaches" })));
  main.replaceChildren(
    el("h1", {}, el("a", { href: "#/slas?tenant=" + encodeURIComponent(tenant), text: "Agreements" }), " / " + a.id),
    el("p", {}, state(a.state), " ", a.type === "template" ? "template" : compliance(a.compliant),
      " " + a.breaches + " breaches, version " + a.version + (a.name ? " — " + a.name : "")),
    el("h2", { text: "Guarantees" }),
    el("div", { class: "table-wrap" }, el("table", { id: "guarantees-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "guarantee" }), el("th", { text: "constraint" }), el("th", { text: "compliance" }),
        el("th", { text: "evaluations" }), el("th", { text: "violations" }), el("th", { text: "breaches" }))), gs)),
    el("h2", { text: "Recent breaches" }),
    el("div", { class: "table-wrap" }, el("table", { id: "breaches-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "time" }), el("th", { text: "what" }),
        el("th", { text: "guarantee" }), el("th", { text: "job" }), el("th", { text: "observed" }))), recent)));
  every(5000);
}

// ---- routing ---------------------------------------------------------------

async function route() {
  closeStreams();
  const hash = location.hash || "#/jobs";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  try {
    if (parts[0] === "job" && parts.length === 3) await jobPage(parts[1], parts[2]);
    else if (parts[0] === "backends") await backendsPage();
    else if (parts[0] === "slas") await slasPage(new URLSearchParams(query || ""));
    else if (parts[0] === "sla" && parts.length === 3) await slaPage(parts[1], parts[2]);
    else await jobsPage(new URLSearchParams(query || ""));
    document.body.dataset.ready = hash;
  } catch (e) {
    main.replaceChildren(el("p", { class: "muted", id: "page-error", text: "Cannot show this page: " + e.message }));
    document.body.dataset.ready = hash;
  }
}

window.addEventListener("hashchange", route);
route();
