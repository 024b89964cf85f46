// page_sql.js — the SQL editor (CodeMirror 5, embedded: highlighting, completion of dataset
// and column names), run with Ctrl-Enter, the results grid (virtual scrolling), a quick
// chart, time travel (as_of), CSV and Parquet downloads, and the API's errors as given.
import { api, enc } from "./api.js";
import { h, field, select, section, guarded, download, fmtNum, announce } from "./dom.js";
import { grid } from "./grid.js";
import { resultChart, chartFrame } from "./chart.js";

let lastSql = "SELECT * FROM _events ORDER BY ts DESC LIMIT 100";
let schemaCache = null;

async function schema() {
  if (schemaCache) return schemaCache;
  const list = (await api("GET", "/catalog/datasets")).datasets || [];
  const tables = {};
  await Promise.all(list.slice(0, 200).map(async (d) => {
    try {
      const ds = await api("GET", `/catalog/datasets/${enc(d.name)}`);
      tables[d.name] = (ds.columns || []).map((c) => c.name);
    } catch { tables[d.name] = []; }
  }));
  schemaCache = tables;
  return tables;
}

function asOf(mode, value) {
  if (mode === "timestamp") return { timestamp: value.trim() };
  if (mode === "version") return { version: Number(value) };
  return undefined;
}

export async function sqlPage({ view }) {
  const host = h("div", { class: "editor" });
  const mode = select([["", "now"], ["timestamp", "at a time"], ["version", "at a version"]], "");
  const when = h("input", { placeholder: "2026-03-01T09:00:00Z or 3", disabled: true });
  mode.addEventListener("change", () => { when.disabled = !mode.value; });
  const limit = h("input", { type: "number", min: 1, value: 100000 });
  const runBtn = h("button", { type: "button", class: "primary", onclick: () => run() }, "Run (Ctrl-Enter)");
  const csvBtn = h("button", { type: "button", onclick: () => save("csv") }, "Download CSV");
  const pqBtn = h("button", { type: "button", onclick: () => save("parquet") }, "Download Parquet");
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const out = h("div", { class: "results" });
  const chartBox = h("div");
  view.append(h("h1", {}, "SQL"),
    h("div", { class: "card" }, h("label", { id: "sql-label", class: "label" }, "Query"), host,
      h("div", { class: "filters" }, field("Time travel", mode), field("As of", when), field("Row limit", limit)),
      h("div", { class: "actions" }, runBtn, csvBtn, pqBtn)),
    status, out, chartBox);

  const cm = window.CodeMirror(host, {
    value: lastSql, mode: "text/x-sql", lineNumbers: true, matchBrackets: true,
    screenReaderLabel: "SQL query", viewportMargin: Infinity,
    extraKeys: {
      "Ctrl-Enter": () => run(), "Cmd-Enter": () => run(),
      "Ctrl-Space": "autocomplete", Tab: false, "Shift-Tab": false,
    },
    hintOptions: { completeSingle: false, tables: {} },
  });
  cm.on("inputRead", (ed, change) => {
    if (/^[\w.]$/.test(change.text[0] || "")) ed.showHint({ completeSingle: false });
  });
  schema().then((t) => { cm.setOption("hintOptions", { completeSingle: false, tables: t }); }, () => {});

  function body(format) {
    const b = { sql: cm.getValue(), limit: Number(limit.value) || 100000 };
    if (format) b.format = format;
    const a = asOf(mode.value, when.value);
    if (a) b.as_of = a;
    return b;
  }

  async function run() {
    lastSql = cm.getValue();
    runBtn.disabled = true;
    status.textContent = "Running…";
    chartBox.replaceChildren();
    const t0 = performance.now();
    const r = await guarded(out, () => api("POST", "/query", body()));
    runBtn.disabled = false;
    if (!r) { status.textContent = "The query failed."; announce("The query failed"); return; }
    const ms = Math.round(performance.now() - t0);
    status.textContent = `${fmtNum(r.row_count)} rows${r.truncated ? " (truncated at the limit)" : ""} in ${ms} ms`;
    announce(status.textContent);
    out.replaceChildren(grid(r.columns, r.rows, { label: "Query results" }));
    chartControls(r);
  }

  function chartControls(r) {
    const numeric = r.columns.filter((c) => /INT|DOUBLE|FLOAT|DECIMAL|REAL|NUMERIC|HUGEINT/.test(c.type)).map((c) => c.name);
    if (!r.rows.length || !numeric.length) return;
    const x = select(r.columns.map((c) => c.name), r.columns[0].name);
    const y = select(numeric, numeric.find((n) => n !== r.columns[0].name) || numeric[0]);
    const kind = select(["line", "bar"], "bar");
    const frame = chartFrame("Chart of the result");
    const draw = () => {
      frame.replaceChildren();
      resultChart(frame, r.rows.slice(0, 5000), x.value, [y.value], kind.value);
    };
    chartBox.replaceChildren(section("Chart",
      h("div", { class: "filters" }, field("X", x), field("Y", y), field("Kind", kind),
        h("button", { type: "button", onclick: draw }, "Draw chart")), frame));
  }

  async function save(format) {
    status.textContent = `Preparing ${format}…`;
    const resp = await guarded(out, () => api("POST", "/query", body(format), { raw: true }));
    if (!resp) { status.textContent = "The download failed."; return; }
    const blob = await resp.blob();
    download(blob, `result.${format === "csv" ? "csv" : "parquet"}`);
    status.textContent = `Downloaded result.${format} (${fmtNum(blob.size)} bytes)`;
  }
  cm.focus();
}

