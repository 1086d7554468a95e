// tests/ui_check.js BASE TENANT MAPJOB DAGJOB OUTDIR - the dashboard in a
// real browser: Debian's chromium, headless, driven by puppeteer-core
// (tests/peers). Loads the pages while the map runs and asserts on the DOM:
// the jobs page's rows and states, the job page's live state, its Gantt's
// bars (one per task attempt) once it ended, the DAG's nodes and their
// states, the backends page, the agreements pages (a breached agreement,
// its breaches linked to their jobs), and a narrow screen without sideways
// scrolling. Saves a screenshot of each page in OUTDIR. Prints "ok   ..."
// or "FAIL ..." per check; exit status 1 on any failure.
"use strict";
const path = require("path");
const puppeteer = require(path.join(__dirname, "peers", "node_modules", "puppeteer-core"));

const [BASE, T, MAP, DAG, OUT] = process.argv.slice(2);
let fails = 0;
function check(name, ok, detail) {
  console.log((ok ? "ok   " : "FAIL ") + name + (ok || !detail ? "" : ": " + detail));
  if (!ok) fails++;
}

// Go to a page and wait until app.js says it is drawn.
async function show(page, hash) {
  await page.goto(BASE + "/" + hash, { waitUntil: "domcontentloaded" });
  await page.waitForFunction((h) => document.body.dataset.ready === h, { timeout: 60000 }, hash);
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CB_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.setViewport({ width: 1280, height: 900 });

  // the jobs page while the map runs
  await show(page, "#/jobs?tenant=" + T);
  const rows = await page.$$eval("#jobs-table tbody tr[data-job]", (trs) =>
    trs.map((tr) => [tr.dataset.job, tr.dataset.state]));
  const byJob = Object.fromEntries(rows);
  check("the jobs page lists the tenant's jobs (" + rows.length + " rows)",
    byJob[T + "/" + MAP] !== undefined && byJob[T + "/" + DAG] !== undefined, JSON.stringify(rows));
  check("the map is running there", byJob[T + "/" + MAP] === "running", byJob[T + "/" + MAP]);
  await page.screenshot({ path: path.join(OUT, "jobs.png"), fullPage: true });

  // the map's page while it runs, then live to its end
  await show(page, "#/job/" + T + "/" + MAP);
  const live = await page.$eval("#job-status", (e) => e.textContent);
  check("the job page shows the map running", live === "running", live);
  await page.screenshot({ path: path.join(OUT, "job-map-running.png"), fullPage: false });
  await page.waitForFunction(() => {
    const s = document.querySelector("#job-status");
    return s && s.textContent === "succeeded" && document.querySelector("#gantt");
  }, { timeout: 120000 });
  await page.waitForFunction(() => document.body.dataset.ready && document.querySelector("#result-preview"), { timeout: 60000 });
  const bars = await page.$$eval("#gantt rect.bar", (r) => r.length);
  const okBars = await page.$$eval("#gantt rect.bar-ok", (r) => r.length);
  check("pushed to its end: the Gantt has a bar per task (1000), all succeeded", bars === 1000 && okBars === 1000,
    bars + " bars, " + okBars + " ok");
  const lanes = await page.$$eval("#gantt text.lane", (t) => t.map((x) => x.textContent));
  check("in the local backend's lane", JSON.stringify(lanes) === '["local"]', JSON.stringify(lanes));
  const total = await page.$eval("#job-counts", (e) => e.textContent);
  check("the counts say 1000 succeeded", /1000\s*total/.test(total) && /1000\s*succeeded/.test(total), total);
  const preview = await page.$eval("#result-preview", (e) => e.textContent);
  check("the result is shown, with a download link", preview.startsWith("[") &&
    (await page.$("#result-download")) !== null, preview.slice(0, 60));
  const timeline = await page.$eval("#timeline", (t) => Number(t.dataset.events));
  const rowsShown = await page.$$eval("#timeline tbody tr", (r) => r.length);
  // the job's log entries as the API gives them, page after page (1000 a page)
  const logged = await page.evaluate(async (path) => {
    let n = 0, after = null;
    for (;;) {
      const r = await (await fetch(path + (after !== null ? "&after=" + encodeURIComponent(after) : ""))).json();
      n += r.events.length;
      if (r.next === null || r.next === undefined) return n;
      after = r.next;
    }
  }, "/v1/jobs/" + T + "/" + MAP + "/events?limit=1000");
  // (more than one page: 1000 starts alone, the successes of a command share events)
  check("the timeline has all the job's events, over more than one page (the first 200 shown)",
    timeline === logged && timeline > 1000 && rowsShown === 200,
    timeline + " events of " + logged + ", " + rowsShown + " rows");
  await page.screenshot({ path: path.join(OUT, "job-map.png"), fullPage: true });

  // the DAG's page
  await show(page, "#/job/" + T + "/" + DAG);
  await page.waitForFunction(() => document.querySelector("#job-status").textContent === "succeeded" &&
    document.querySelectorAll("#dag g.node").length > 0, { timeout: 60000 }).catch(() => {});
  const nodes = await page.$$eval("#dag g.node", (g) => g.map((x) => [x.dataset.step, x.dataset.state]));
  check("the DAG shows its 4 steps with their states (D skipped by its when)",
    JSON.stringify(nodes) === JSON.stringify([["A", "succeeded"], ["B", "succeeded"], ["C", "succeeded"], ["D", "skipped"]]),
    JSON.stringify(nodes));
  const edges = await page.$$eval("#dag path.edge", (p) => p.length);
  check("and its 4 dependencies", edges === 4, String(edges));
  const dagLanes = await page.$$eval("#gantt text.lane", (t) => t.map((x) => x.textContent));
  check("its Gantt lane is its steps' backend", JSON.stringify(dagLanes) === '["local"]', JSON.stringify(dagLanes));
  const errs = await page.$eval("#errors", (e) => e.textContent);
  check("a skipped step is no error", errs === "none", errs);
  await page.screenshot({ path: path.join(OUT, "job-dag.png"), fullPage: true });

  // the backends page
  await show(page, "#/backends");
  const adapters = await page.$$eval("#backends-table tbody tr", (r) => r.map((x) => [x.dataset.backend, x.dataset.adapter]));
  check("the backends page shows the local adapter", adapters.some(([b, a]) => b === "local" && a === "adapter0"),
    JSON.stringify(adapters));
  await page.screenshot({ path: path.join(OUT, "backends.png"), fullPage: true });

  // the agreements pages: the tenant's agreement "quick" ([makespan] < 1),
  // breached by the DAG (the page reads again every 5 s until it shows it)
  await show(page, "#/slas?tenant=" + T);
  const breached = await page.waitForSelector('#slas-table tr[data-agreement="quick"][data-compliant="false"]',
    { timeout: 60000 }).then(() => true, () => false);
  check("the agreements page shows the tenant's agreement breached", breached);
  const nb = await page.$eval('#slas-table tr[data-agreement="quick"] .breaches', (x) => Number(x.textContent)).catch(() => 0);
  check("... with its breaches counted", nb >= 1, String(nb));
  await page.screenshot({ path: path.join(OUT, "slas.png"), fullPage: true });
  await show(page, "#/sla/" + T + "/quick");
  const links = await page.$$eval('#breaches-table tr[data-kind="violated"] a', (r) => r.map((a) => a.getAttribute("href")));
  check("an agreement's page lists its breaches with the jobs that broke it",
    links.includes("#/job/" + T + "/" + DAG), JSON.stringify(links));
  const g = await page.$$eval("#guarantees-table tbody tr", (r) => r.map((x) => x.dataset.guarantee));
  check("... and its guarantees", g.length === 1 && g[0] === "makespan", JSON.stringify(g));
  await page.screenshot({ path: path.join(OUT, "sla.png"), fullPage: true });

  // a narrow screen
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  for (const [hash, file] of [["#/jobs?tenant=" + T, "jobs-narrow.png"], ["#/job/" + T + "/" + DAG, "job-dag-narrow.png"],
    ["#/sla/" + T + "/quick", "sla-narrow.png"]]) {
    await show(page, hash);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check("on a 390 px screen " + hash + " needs no sideways scrolling", wide <= 1, wide + " px too wide");
    await page.screenshot({ path: path.join(OUT, file), fullPage: true });
  }
  check("no script errors in the pages", errors.length === 0, errors.join(" | "));
  await browser.close();
  process.exit(fails ? 1 : 0);
})().catch((e) => {
  console.log("FAIL the browser test stopped: " + e.message);
  process.exit(1);
});
