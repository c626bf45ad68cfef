// sizeup dashboard: one small script, no framework, nothing fetched from outside this server.
// Every string from the store goes into the page as text (textContent), never as markup.
"use strict";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

const pct = (x) => (x === null || x === undefined ? "n/a" : `${Math.round(100 * x)} %`);
const num = (x, digits = 1) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(digits));
const duration = (s) => (s === null || s === undefined ? "n/a" : s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);

function setCrumbs(...links) {
  crumbs.replaceChildren(...links.map(([text, href]) => el("a", { href, text })));
}

// -- runs ------------------------------------------------------------------------------------------------

async function runsPage() {
  setCrumbs(["runs", "/"]);
  async function render() {
    const runs = await getJSON("/api/runs");
    const rows = runs.map((r) => el("tr", {},
      el("td", {}, el("a", { href: `/run/${encodeURIComponent(r.run_id)}`, text: r.run_id })),
      el("td", { class: `status-${r.status}`, text: r.status }),
      el("td", {}, el("span", { class: "bar" }, el("span", { style: `width:${r.total ? (100 * r.done) / r.total : 0}%` })),
        ` ${r.done} / ${r.total}`),
      el("td", { text: r.arms.map((a) => `${a.name} (${a.strategy})`).join(", ") }),
      el("td", { text: r.models.join(", ") }),
      el("td", { text: r.started_at }),
      el("td", { text: `${r.machine.cpus ?? "?"} CPUs, ${r.machine.memory_gb ?? "?"} GB` })));
    main.replaceChildren(el("h1", { text: "Runs" }), el("table", {},
      el("thead", {}, el("tr", {}, ...["run", "status", "progress", "arms", "models", "started", "machine"].map((h) => el("th", { text: h })))),
      el("tbody", { id: "runs" }, ...rows)));
  }
  await render();
  every(2000, render, () => {});
}

// Calls `step` again `ms` after its last call ended, never while it is still waiting for an answer: polls
// that overlapped would send the same `since`, add the same samples twice, and a late one could rewind it.
function every(ms, step, onError) {
  const again = () => setTimeout(() => step().catch(onError).finally(again), ms);
  again();
}

// -- live run --------------------------------------------------------------------------------------------

function drawLine(canvas, points, label, unit) {
  const ctx = canvas.getContext("2d");
  const width = (canvas.width = canvas.clientWidth * devicePixelRatio);
  const height = (canvas.height = canvas.clientHeight * devicePixelRatio);
  ctx.clearRect(0, 0, width, height);
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  ctx.fillStyle = "#5b6472";
  ctx.fillText(label, 8 * devicePixelRatio, 14 * devicePixelRatio);
  if (points.length < 2) return;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y1 = Math.max(1, ...ys);
  ctx.fillText(`${num(y1, 0)} ${unit}`, 8 * devicePixelRatio, 28 * devicePixelRatio);
  ctx.strokeStyle = "#1f5fbf";
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.beginPath();
  points.forEach(([x, y], i) => {
    const px = ((x - x0) / Math.max(1e-9, x1 - x0)) * (width - 16) + 8;
    const py = height - 6 - (y / y1) * (height - 40);
    if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  });
  ctx.stroke();
}

async function runPage(runId) {
  const base = `/run/${encodeURIComponent(runId)}`;
  setCrumbs(["runs", "/"], [runId, base], ["compare", `${base}/compare`]);
  // since: the last progress seq seen (a small counter, exact as a JS number); version: the results' version.
  let version = null, since = 0, samples = [], results = null, shown = null;
  const summary = el("div", { id: "summary" }), grid = el("div", { id: "grid" }), flight = el("p", { id: "in-flight", class: "note" });
  const cpu = el("canvas", { id: "cpu" }), rss = el("canvas", { id: "rss" }), rate = el("canvas", { id: "rate" });
  const etaNote = el("p", { class: "note", id: "eta-note", text: "ETA: the arms take turns on each task, so an arm's last task ends " +
    "after every arm's turns before it; each turn still to come is counted at its arm's mean task time so far (the task in " +
    "flight in full, divided by the workers when there are several); n/a until each of those arms has finished a task." });
  main.replaceChildren(el("h1", { text: `Run ${runId}` }), summary, etaNote, flight, el("h2", { text: "Tasks" }), grid,
    el("h2", { text: "Model servers while the run goes on" }), el("div", { class: "charts" }, cpu, rss, rate));

  function renderResults(data, inFlight) {
    summary.replaceChildren(el("p", {}, "status ", el("b", { class: `status-${data.status}`, id: "run-status", text: data.status })),
      el("table", {}, el("thead", {}, el("tr", {}, ...["arm", "strategy", "models", "progress", "solved", "ETA"].map((h) => el("th", { text: h })))),
        el("tbody", {}, ...Object.entries(results.arms).map(([name, a]) => el("tr", {},
          el("td", { text: name }), el("td", { text: a.strategy }), el("td", { text: a.models.join(" + ") }),
          el("td", {}, el("span", { class: "bar" }, el("span", { style: `width:${a.total ? (100 * a.done) / a.total : 0}%` })),
            el("span", { class: "done", "data-arm": name, text: ` ${a.done} / ${a.total}` })),
          el("td", { text: `${a.solved}` }), el("td", { class: "eta", "data-arm": name, text: data.status === "running" ? duration(a.eta_s) : "-" }))))));
    const byKey = new Map(results.cells.map((c) => [`${c.task_id}\u0000${c.arm}`, c]));
    const arms = Object.keys(results.arms);
    const head = el("tr", {}, el("th", { text: "task" }), ...arms.map((a) => el("th", { text: a })));
    const rows = results.task_ids.map((taskId) => el("tr", {}, el("th", {}, el("a", { href: `${base}/task/${encodeURIComponent(taskId)}`, text: taskId })),
      ...arms.map((arm) => {
        const cell = byKey.get(`${taskId}\u0000${arm}`);
        const running = inFlight && inFlight.task_id === taskId && inFlight.arm === arm;
        const status = cell ? cell.status : running ? "running" : "pending";
        return el("td", { class: `cell cell-${status}`, title: cell ? `${cell.status}, depth ${cell.depth}` : status,
          text: cell ? `${cell.status.slice(0, 4)} d${cell.depth}` : running ? "…" : "" });
      })));
    grid.replaceChildren(el("table", { class: "grid", id: "task-grid" }, el("thead", {}, head), el("tbody", {}, ...rows)));
    drawLine(rate, results.cells.filter((c) => c.tokens_per_s).map((c, i) => [i, c.tokens_per_s]), "decode tokens/s per finished task", "tok/s");
  }

  async function poll() {
    const query = new URLSearchParams({ since: String(since) });
    if (version) query.set("version", version);
    const data = await getJSON(`/api/runs/${encodeURIComponent(runId)}?${query}`);
    live.textContent = `updated ${new Date().toLocaleTimeString()}`;
    // Every poll brings the task in flight and the samples after `since`; the results only when they changed.
    if (!data.unchanged) results = { arms: data.arms, cells: data.cells, task_ids: data.task_ids };
    version = data.version;
    since = data.last_seq;
    const inFlight = data.in_flight;
    const key = JSON.stringify([version, inFlight && inFlight.task_id, inFlight && inFlight.arm]);
    if (results && key !== shown) {  // the grid and the table are rebuilt only when they would change
      shown = key;
      renderResults(data, inFlight);
    }
    flight.textContent = inFlight ? `in flight: ${inFlight.task_id} [${inFlight.arm}]` : "";
    if (data.samples.length || samples.length === 0) {
      samples = samples.concat(data.samples).slice(-600);
      drawLine(cpu, samples.map((s) => [s.at, s.cpu_pct]), "model servers' CPU %", "%");
      drawLine(rss, samples.map((s) => [s.at, s.rss_mb]), "model servers' memory, MB", "MB");
    }
  }
  await poll();
  every(1000, poll, (e) => (live.textContent = String(e)));
}

// -- one task's trees --------------------------------------------------------------------------------------

function treeNode(node, children, best) {
  const head = el("div", {}, el("code", { text: node.attempt_id }), " ",
    el("span", { class: `status-${node.status}`, text: node.status }),
    ` ${node.tests_passed}/${node.tests_total} tests · ${node.kind || "node"} by ${node.model || "?"} · ` +
    `${node.prompt_tokens} + ${node.completion_tokens} tokens · ${num(node.gen_s, 2)} s`,
    node.attempt_id === best ? el("b", { text: " kept" }) : null);
  const details = el("details", {}, el("summary", { text: "prompt, reply, code, feedback" }),
    ...[["prompt", node.prompt], ["reply", node.response], ["code", node.code], ["feedback", node.feedback], ["note", node.note], ["error", node.error]]
      .filter(([, text]) => text).flatMap(([label, text]) => [el("div", { class: "note", text: label }), el("pre", { class: `node-${label}`, text })]));
  const kids = (children.get(node.attempt_id) || []).map((child) => treeNode(child, children, best));
  return el("li", {}, head, details, kids.length ? el("ul", {}, ...kids) : null);
}

async function taskPage(runId, taskId) {
  const base = `/run/${encodeURIComponent(runId)}`;
  setCrumbs(["runs", "/"], [runId, base], [taskId, `${base}/task/${encodeURIComponent(taskId)}`]);
  const data = await getJSON(`/api/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}`);
  const columns = Object.entries(data.arms).map(([arm, side]) => {
    const ids = new Set(side.attempts.map((a) => a.attempt_id));
    const children = new Map();
    for (const node of side.attempts) {
      const parent = ids.has(node.parent_id) ? node.parent_id : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(node);
    }
    return el("section", { class: "arm" }, el("h2", {}, `${arm}: ${side.model} — `, el("span", { class: `status-${side.status}`, text: side.status })),
      el("ul", { class: "tree" }, ...(children.get(null) || []).map((n) => treeNode(n, children, side.best_attempt_id))));
  });
  main.replaceChildren(el("h1", { text: `Task ${taskId}` }),
    data.task ? el("pre", { class: "task-prompt", text: data.task.prompt }) : null, el("div", { class: "arms" }, ...columns));
}

// -- compare -----------------------------------------------------------------------------------------------

async function comparePage(runId) {
  const base = `/run/${encodeURIComponent(runId)}`;
  const api = `/api/runs/${encodeURIComponent(runId)}`;
  setCrumbs(["runs", "/"], [runId, base], ["compare", `${base}/compare`]);
  const data = await getJSON(`${api}/compare`);
  const arms = el("table", { id: "arms" }, el("thead", {}, el("tr", {}, ...["arm", "strategy", "models", "tasks", "success [95 % CI]",
    "CPU-s per task", "tokens per task", "peak MB per task", "calls per task"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...data.arms.map((a) => el("tr", { "data-arm": a.name },
      el("td", { text: a.name }), el("td", { text: a.strategy }), el("td", { text: a.models.join(" + ") }),
      el("td", { text: a.tasks }), el("td", { class: "success", text: `${pct(a.success_rate)} [${pct(a.success_ci[0])}–${pct(a.success_ci[1])}]` }),
      el("td", { text: num(a.cpu_s_median, 2) }), el("td", { text: num(a.tokens_median, 0) }),
      el("td", { text: num(a.model_peak_rss_mb_median, 0) }), el("td", { text: num(a.model_calls_mean, 2) })))));
  const pairs = el("table", { id: "pairs" }, el("thead", {}, el("tr", {}, ...["arm", "vs", "tasks", "difference [95 % CI]", "McNemar p"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...data.pairs.map((p) => el("tr", {}, el("td", { text: p.arm }), el("td", { text: p.baseline }), el("td", { text: p.tasks }),
      el("td", { text: `${pct(p.success_diff)} [${p.success_diff_ci ? p.success_diff_ci.map(pct).join(", ") : "n/a"}]` }),
      el("td", { text: num(p.mcnemar_p, 3) })))));
  const downloads = el("p", {}, "report: ", ...["html", "csv", "json"].flatMap((f) => [el("a", { href: `${api}/report.${f}`, text: f }), " "]));
  const plots = el("div", { class: "charts", id: "plots" }, el("p", { class: "note", text: "plots loading…" }));
  main.replaceChildren(el("h1", { text: `Compare ${runId}` }), el("p", { class: "note", text: `baseline ${data.baseline}; ${data.tasks_all_arms} tasks every arm finished; protocol ${data.protocol}; sandbox: ${data.sandbox.note}` }),
    arms, pairs, downloads, plots);
  getJSON(`${api}/plots`).then((images) => plots.replaceChildren(...Object.entries(images).map(([name, uri]) => el("img", { class: "plot", alt: name, src: uri }))))
    .catch(() => (plots.textContent = "plots unavailable"));
}

// -- routing ---------------------------------------------------------------------------------------------

const path = decodeURIComponent(location.pathname);
const route = path.match(/^\/run\/([^/]+)(?:\/(compare)|\/task\/(.+))?$/);
(route ? (route[2] ? comparePage(route[1]) : route[3] ? taskPage(route[1], route[3]) : runPage(route[1])) : runsPage())
  .catch((e) => main.replaceChildren(el("p", { class: "note", text: String(e) })));
