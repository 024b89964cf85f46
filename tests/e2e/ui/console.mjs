// console.mjs — drives the web console in headless Chromium (Debian's chromium, through
// puppeteer-core) for tests/e2e/test_ui.py.
//
//   node console.mjs BASE_URL SCENARIO OUT_DIR      (tokens in LH_TOKENS as JSON)
//
// Prints one JSON object: {"failures": [...], "seen": {...}}. A failure is a check that
// did not hold; every page also fails on a console error, an uncaught exception, a
// Content-Security-Policy violation or a control without a label. Screenshots of each page
// go to OUT_DIR at 1280×800 and (scenario "phone") at 390×844.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.LH_NODE_DIR, "node_modules", "x.js"));
const puppeteer = require("puppeteer-core");

const [base, scenario, outDir] = process.argv.slice(2);
const tokens = JSON.parse(process.env.LH_TOKENS || "{}");
const failures = [];
const seen = {};
const check = (cond, what) => { if (!cond) failures.push(what); return cond; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await puppeteer.launch({
  executablePath: process.env.LH_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 800 });
const problems = [];
page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
await page.evaluateOnNewDocument(() => {
  document.addEventListener("securitypolicyviolation", (e) => {
    (window.__csp = window.__csp || []).push(`${e.violatedDirective} ${e.blockedURI}`);
  });
});

async function waitText(selector, text, timeout = 15000) {
  await page.waitForFunction((s, t) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)),
    { timeout }, selector, text);
}

// Every form control has a label (or an aria-label); every button says what it does.
async function checkPage(name) {
  const bad = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden" || el.closest(".CodeMirror") && el.tagName === "TEXTAREA" && el.getAttribute("aria-label")) continue;
      if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
        out.push(`${el.tagName.toLowerCase()}#${el.id || "?"} has no label`);
    }
    for (const b of document.querySelectorAll("button, a[href]"))
      if (!b.textContent.trim() && !b.getAttribute("aria-label")) out.push(`a ${b.tagName.toLowerCase()} has no text`);
    return out.concat(window.__csp || []);
  });
  for (const b of bad) failures.push(`${name}: ${b}`);
  for (const p of problems.splice(0)) failures.push(`${name}: ${p}`);
  const file = path.join(outDir, `${name}-${page.viewport().width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  (seen.screenshots = seen.screenshots || []).push(file);
}

async function signIn(who = "owner") {
  await page.goto(`${base}/ui/`, { waitUntil: "networkidle0" });
  await page.waitForSelector("form.signin input[type=password]");
  await page.type("form.signin input[type=password]", tokens[who]);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#nav:not([hidden])");
}

async function go(hash, ready) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(ready, { timeout: 20000 });
}

async function runSql(sql) {
  await page.evaluate((s) => { document.querySelector(".CodeMirror").CodeMirror.setValue(s); }, sql);
  await page.click(".CodeMirror");
  await page.keyboard.down("Control");
  await page.keyboard.press("Enter");
  await page.keyboard.up("Control");
}

try {
  if (scenario === "signin") {
    await page.goto(`${base}/ui/`, { waitUntil: "networkidle0" });
    const first = await page.evaluate(() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
      .filter((e) => new URL(e.name).pathname.startsWith("/ui/"))
      .map((e) => ({ url: new URL(e.name).pathname, encoded: e.encodedBodySize, decoded: e.decodedBodySize })));
    seen.first_load = first;
    await page.type("form.signin input[type=password]", "tok-not-a-real-token-00");
    await page.keyboard.press("Enter");
    await waitText("form.signin .error", "");
    seen.bad_token_error = await page.$eval("form.signin .error", (e) => e.textContent);
    await checkPage("signin");
    await page.$eval("form.signin input[type=password]", (e) => { e.value = ""; });
    await page.type("form.signin input[type=password]", tokens.owner);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#nav:not([hidden])");
    seen.stored = await page.evaluate(() => Object.keys(sessionStorage));
    seen.url = page.url();
    // keyboard: on a fresh load (still signed in: the tab keeps the token) the first Tab
    // reaches the skip link, then the brand and the section links
    await page.reload({ waitUntil: "networkidle0" });
    await page.waitForSelector("table.datasets");
    const name = () => page.evaluate(() => {
      const e = document.activeElement;
      return (e.labels && e.labels[0] && e.labels[0].textContent) || e.textContent.trim();
    });
    // a page's content has the focus after navigation: Tab goes to its first control
    await page.keyboard.press("Tab");
    seen.first_tab = await name();
    // from the top of the page: the skip link, then the brand and the section links
    await page.focus("a.skip");
    const order = [await name()];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press("Tab");
      order.push(await name());
    }
    seen.tab_order = order;
    seen.first_focusable = await page.evaluate(() => document.querySelector("a[href], button, input, select, textarea").textContent);
    // Enter on the skip link moves the focus to the content
    await page.focus("a.skip");
    await page.keyboard.press("Enter");
    seen.after_skip = await page.evaluate(() => document.activeElement.id);
  } else if (scenario === "catalog") {
    await signIn();
    await page.waitForSelector("table.datasets");
    seen.datasets = await page.$$eval("table.datasets tbody tr td:first-child", (t) => t.map((x) => x.textContent));
    seen.fresh_badges = await page.$$eval("table.datasets .badge[class*=fresh-]", (t) => t.map((x) => x.textContent));
    await checkPage("catalog");
    await page.type("input[type=search]", "people");
    seen.filtered = await page.$$eval("table.datasets tbody tr td:first-child", (t) => t.map((x) => x.textContent));
    await page.click("table.datasets a");
    await page.waitForSelector(".grid-viewport");
    await waitText("h2", "Columns");
    seen.columns = await page.$$eval("section table tbody tr td:first-child", (t) => t.map((x) => x.textContent));
    seen.preview_rows = await page.$eval(".grid-viewport", (g) => g.querySelectorAll(".grid-row").length);
    // edit the description (a writer), which makes a new version
    await page.$eval("form.card textarea", (e) => { e.value = ""; });
    await page.type("form.card textarea", "people of the console test");
    await page.click("form.card button[type=submit]");
    await page.waitForSelector("p.flash");
    seen.saved = await page.$eval("p.flash", (e) => e.textContent);
    await page.waitForSelector(".grid-viewport");
    // the change feed between two versions and a record's history
    await page.select("select[name=from_version]", "1");
    await page.select("select[name=to_version]", "2");
    const forms = await page.$$("section form.filters");
    await forms[0].$eval("button", (b) => b.click());
    await page.waitForFunction(() => [...document.querySelectorAll("section p")].some((p) => /inserted, .* updated/.test(p.textContent)), { timeout: 15000 });
    seen.changes = await page.evaluate(() => [...document.querySelectorAll("section p")].map((p) => p.textContent).find((t) => /inserted/.test(t)));
    await forms[1].$eval("input", (i) => { i.value = "2"; });
    await forms[1].$eval("button", (b) => b.click());
    await waitText("section h3", "History");
    seen.history = await page.evaluate(() => [...document.querySelectorAll("section h3")].map((h) => h.textContent));
    seen.versions = await page.$$eval("ol.timeline li", (l) => l.map((x) => x.textContent));
    await checkPage("dataset");
  } else if (scenario === "sql") {
    await signIn();
    await go("#/sql", ".CodeMirror");
    await runSql("SELECT i AS n, i % 7 AS bucket, 'row ' || i AS label FROM range(100000) t(i)");
    await page.waitForSelector(".grid-viewport");
    await waitText("p", "100,000 rows");
    await page.waitForSelector(".grid-row .grid-cell");
    seen.status = await page.evaluate(() => [...document.querySelectorAll("p")].map((p) => p.textContent).find((t) => /rows/.test(t)));
    seen.drawn_rows = await page.$eval(".grid-viewport", (g) => g.lhDrawnRows());
    // to the bottom with the keyboard: End on the grid
    await page.focus(".grid-viewport");
    await page.keyboard.press("End");
    await sleep(300);
    seen.last_row = await page.$eval(".grid-viewport", (g) => [...g.querySelectorAll(".grid-row")].map((r) => r.firstChild.textContent).pop());
    seen.aria_rowcount = await page.$eval(".grid-viewport", (g) => g.getAttribute("aria-rowcount"));
    // smoothness: scroll through in steps and time the frames
    seen.scroll_ms = await page.$eval(".grid-viewport", async (g) => {
      const t0 = performance.now();
      for (let i = 0; i < 60; i++) {
        g.scrollTop = (i * 97 % 100) * 28000;
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      }
      return (performance.now() - t0) / 60;
    });
    seen.drawn_after_scroll = await page.$eval(".grid-viewport", (g) => g.lhDrawnRows());
    await checkPage("sql");
    // a chart of the result
    await runSql("SELECT i % 12 AS month, count(*) AS n FROM range(1200) t(i) GROUP BY 1 ORDER BY 1");
    await waitText("p", "12 rows");
    await page.evaluate(() => [...document.querySelectorAll("button")].find((b) => b.textContent === "Draw chart").click());
    await page.waitForSelector("figure.chart canvas");
    seen.chart_canvas = await page.$eval("figure.chart canvas", (c) => [c.width, c.height]);
    await checkPage("sql-chart");
    // completion of dataset names
    await page.evaluate(() => { const cm = document.querySelector(".CodeMirror").CodeMirror; cm.setValue("SELECT * FROM "); cm.setCursor({ line: 0, ch: 14 }); });
    await page.click(".CodeMirror");
    await page.keyboard.press("End");
    await page.keyboard.type("peo");
    await page.waitForSelector(".CodeMirror-hints", { timeout: 10000 });
    seen.hints = await page.$$eval(".CodeMirror-hints li", (l) => l.map((x) => x.textContent));
    await page.keyboard.press("Escape");
    // time travel: the first version of people, before the second ingest
    await runSql("SELECT count(*) AS n FROM people");
    await waitText("p", "1 rows");
    await page.waitForSelector(".grid-row .grid-cell");
    seen.count_now = await page.$eval(".grid-row .grid-cell", (c) => c.textContent);
    await page.select(".filters select", "version");
    await page.type(".filters input:not([type=number])", "1");
    await runSql("SELECT count(*) AS n FROM people");
    await sleep(200);
    await page.waitForFunction((before) => document.querySelector(".grid-row .grid-cell") && document.querySelector(".grid-row .grid-cell").textContent !== before, { timeout: 15000 }, seen.count_now);
    seen.count_v1 = await page.$eval(".grid-row .grid-cell", (c) => c.textContent);
    await page.select(".filters select", "");
    // a 4xx rendered as the API gives it
    await runSql("SELECT nope FROM people");
    await page.waitForSelector(".results .error");
    seen.error = await page.$eval(".results .error", (e) => ({
      message: e.querySelector("strong").textContent, code: e.querySelector(".code").textContent,
      detail: e.querySelector(".detail") && e.querySelector(".detail").textContent, role: e.getAttribute("role"),
    }));
    await checkPage("sql-error");
    // downloads: CSV through the same API call
    const csv = await page.evaluate(async () => {
      const r = await fetch("/query", { method: "POST", headers: { Authorization: `Bearer ${sessionStorage.getItem("lakehouse.token")}`, "Content-Type": "application/json" }, body: JSON.stringify({ sql: "SELECT 1 AS a", format: "csv" }) });
      return r.text();
    });
    seen.csv = csv;
    const client = await page.target().createCDPSession();
    await client.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: outDir, eventsEnabled: true });
    await runSql("SELECT i FROM range(10) t(i)");
    await waitText("p", "10 rows");
    await page.evaluate(() => [...document.querySelectorAll("button")].find((b) => b.textContent === "Download Parquet").click());
    await waitText("p", "Downloaded result.parquet");
    await page.evaluate(() => [...document.querySelectorAll("button")].find((b) => b.textContent === "Download CSV").click());
    await waitText("p", "Downloaded result.csv");
    await sleep(500);
  } else if (scenario === "search") {
    await signIn();
    await go("#/search", "form[role=search] select");
    await page.select("select[name=index]", "people_idx");
    await page.type("input[name=query]", "alice");
    await page.type("input[name=include]", "name, city");
    await page.click("form[role=search] button[type=submit]");
    await page.waitForSelector("table.hits tbody tr");
    seen.hits = await page.$$eval("table.hits tbody tr", (r) => r.map((x) => [...x.children].map((c) => c.textContent)));
    seen.hit_headers = await page.$$eval("table.hits th", (r) => r.map((x) => x.textContent));
    await checkPage("search");
    await page.type("input[name=filter]", "nope = 1");
    await page.click("form[role=search] button[type=submit]");
    await page.waitForSelector(".error");
    seen.filter_error = await page.$eval(".error", (e) => e.textContent);
  } else if (scenario === "trials") {
    await signIn();
    await go("#/trials", "figure.chart canvas");
    seen.live_text = await page.evaluate(() => [...document.querySelectorAll("p")].map((p) => p.textContent).find((t) => t.startsWith("Live:")));
    seen.trial_rows = await page.$$eval("section table tbody tr", (r) => r.length);
    seen.live_badges = await page.$$eval("section table .badge.live", (r) => r.length);
    seen.legend = await page.$$eval(".u-legend .u-label", (l) => l.map((x) => x.textContent));
    await checkPage("trials");
    // click a point on the plot: picks the nearest trial
    const box = await (await page.$(".u-over")).boundingBox();
    await page.mouse.move(box.x + box.width * 0.02, box.y + box.height / 2);
    await page.mouse.move(box.x + box.width * 0.03, box.y + box.height / 2);
    await page.mouse.click(box.x + box.width * 0.03, box.y + box.height / 2);
    await waitText("button", "Promote this point");
    seen.picked = await page.evaluate(() => document.querySelector(".card strong").textContent);
    await page.evaluate(() => [...document.querySelectorAll("button")].find((b) => b.textContent === "Promote this point").click());
    await waitText(".card .ok", "Promoting");
    seen.promoted = await page.$eval(".card .ok", (e) => e.textContent);
    // once the promoted generation is live, roll back to the one before
    const job = seen.promoted.split("job ")[1].split(" ")[0];
    await page.waitForFunction(async (j) => {
      const r = await fetch(`/jobs/${j}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem("lakehouse.token")}` } });
      return (await r.json()).state === "succeeded";
    }, { timeout: 120000, polling: 500 }, job);
    await go("#/catalog", "table.datasets");
    await go("#/trials", "figure.chart canvas");
    seen.generations = await page.$$eval("ol.timeline li", (l) => l.map((x) => x.textContent));
    await page.evaluate(() => [...document.querySelectorAll("button")].find((b) => b.textContent.startsWith("Roll back")).click());
    await waitText("section .ok", "live again");
    seen.rolled_back = await page.$eval("section .ok", (e) => e.textContent);
  } else if (scenario === "jobs") {
    await signIn();
    await go("#/jobs", "table.jobs");
    // a long job (started by the test just before): watch its bar move, then cancel it
    const id = process.env.LH_JOB_ID;
    const values = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 60000) {
      const v = await page.evaluate((jid) => {
        const row = [...document.querySelectorAll("table.jobs tbody tr")].find((r) => r.textContent.includes(jid));
        const p = row && row.querySelector("progress");
        return p ? [p.value, p.max] : null;
      }, id);
      if (v) values.push(v);
      if (new Set(values.map((x) => x[0])).size >= 3) break;
      await sleep(250);
    }
    seen.progress_values = [...new Set(values.map((x) => x.join("/")))];
    await checkPage("jobs");
    await page.evaluate((jid) => document.querySelector(`button[aria-label="Cancel ${jid}"]`).click(), id);
    await page.waitForFunction((jid) => {
      const row = [...document.querySelectorAll("table.jobs tbody tr")].find((r) => r.textContent.includes(jid));
      return row && /cancelled/.test(row.textContent);
    }, { timeout: 60000 }, id);
    seen.cancelled = true;
  } else if (scenario === "storage") {
    await signIn();
    await go("#/storage", "section table");
    seen.buckets = await page.$$eval("section table tbody tr", (r) => r.map((x) => x.textContent));
    await checkPage("storage");
  } else if (scenario === "agents") {
    await signIn();
    await go("#/agents", "table.audit");
    seen.tools = await page.$$eval("ul.plain h3", (l) => l.map((x) => x.textContent));
    seen.audit = await page.$$eval("table.audit tbody tr", (r) => r.map((x) => x.textContent));
    await page.evaluate(() => document.querySelector("table.audit button").click());
    await page.waitForSelector("table.audit .replay, table.audit .error", { timeout: 20000 });
    seen.replay = await page.$eval("table.audit tbody tr", (r) => r.textContent);
    await page.select("form.filters select", "refused");
    await page.evaluate(() => document.querySelector("form.filters button[type=submit]").click());
    await waitText("section p", "No audit records match");
    await page.evaluate(() => document.querySelector("button.link").click());
    await waitText(".card h4", "Activity");
    seen.workspace = await page.$eval(".ws-detail", (c) => c.textContent);
    await checkPage("agents");
  } else if (scenario === "reader") {
    await signIn("reader");
    await page.waitForSelector("table.datasets");
    await page.click("table.datasets a");
    await page.waitForSelector(".grid-viewport");
    seen.edit_forms = await page.$$eval("form.card textarea", (t) => t.length);
    await go("#/agents", "h1");
    await waitText("section p", "for admins");
    await checkPage("reader");
  } else if (scenario === "phone") {
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await signIn();
    seen.overflow = {};
    for (const [hash, ready] of [["#/catalog", "table.datasets"], ["#/datasets/people", ".grid-viewport"],
      ["#/sql", ".CodeMirror"], ["#/search", "form[role=search]"], ["#/trials", "figure.chart canvas"],
      ["#/jobs", "h1"], ["#/storage", "section table"], ["#/agents", "ul.plain"]]) {
      await go(hash, ready);
      await sleep(300);
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      seen.overflow[hash] = w;
      await checkPage(`phone-${hash.slice(2).replace(/\W/g, "_")}`);
    }
  } else {
    failures.push(`unknown scenario ${scenario}`);
  }
} catch (e) {
  failures.push(`${scenario}: ${e.message}`);
  try { await page.screenshot({ path: path.join(outDir, `${scenario}-failure.png`), fullPage: true }); } catch {}
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ failures, seen }));
