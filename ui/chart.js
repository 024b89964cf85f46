// chart.js — charts on uPlot (embedded, pinned): a quick line/bar chart of a query's result
// and the recall/latency scatter of an index's trials.
import uPlot from "./lib/uPlot.esm.js";
import { h } from "./dom.js";

const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"];

function width(el) {
  return Math.max(280, Math.min(1100, (el && el.clientWidth) || 800) - 8);
}

// The x values as numbers uPlot can place: numbers as they are, dates/times as seconds
// (a time axis), anything else as positions 0..n-1 labelled with the text.
function xAxis(values) {
  if (values.every((v) => typeof v === "number")) return { xs: values, time: false };
  const ts = values.map((v) => (typeof v === "string" ? Date.parse(v) : NaN));
  if (values.length && ts.every((t) => !Number.isNaN(t)))
    return { xs: ts.map((t) => t / 1000), time: true };
  return { xs: values.map((_, i) => i), time: false, labels: values.map((v) => String(v)) };
}

// A chart of rows: x column, y columns (numbers), kind "line" or "bar".
export function resultChart(host, rows, xCol, yCols, kind) {
  let data = rows.map((r) => r);
  const { xs, time, labels } = xAxis(data.map((r) => r[xCol]));
  if (!labels) {
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    data = order.map((i) => data[i]);
    xs.sort((a, b) => a - b);
  }
  const series = [{ label: xCol }];
  const cols = [xs];
  yCols.forEach((c, i) => {
    series.push({
      label: c, stroke: COLORS[i % COLORS.length], width: 2,
      fill: kind === "bar" ? COLORS[i % COLORS.length] + "99" : undefined,
      paths: kind === "bar" ? uPlot.paths.bars({ size: [0.8, 64] }) : undefined,
      points: { show: kind !== "bar" && data.length < 60 },
    });
    cols.push(data.map((r) => (r[c] === null || r[c] === undefined ? null : Number(r[c]))));
  });
  const opts = {
    width: width(host), height: 320, scales: { x: { time } },
    series,
    axes: [
      labels ? { values: (u, ticks) => ticks.map((t) => labels[t] ?? "") } : {},
      {},
    ],
  };
  if (labels) opts.scales.x = { time: false, distr: 2 };
  if (kind === "bar") {
    // room for the first and last bars, and bars that stand on zero
    const step = xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / (xs.length - 1) : 1;
    opts.scales.x = { ...opts.scales.x, range: (u, min, max) => [min - step / 2, max + step / 2] };
    opts.scales.y = { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.05 : 1] };
  }
  const plot = new uPlot(opts, cols, host);
  return plot;
}

// The trials of an index: recall (y) against p50 µs (x); the Pareto front (no other trial
// is both faster and at least as accurate) as a line; the live settings as a ring. `onPick`
// gets the trial nearest a click.
export function trialsChart(host, trials, liveIdx, onPick) {
  const order = trials.map((_, i) => i).sort((a, b) => trials[a].p50_us - trials[b].p50_us);
  const ts = order.map((i) => trials[i]);
  const xs = ts.map((t) => t.p50_us);
  const ys = ts.map((t) => t.recall);
  const front = new Array(ts.length).fill(null);
  let best = -Infinity;
  ts.forEach((t, i) => { if (t.recall > best) { best = t.recall; front[i] = t.recall; } });
  const live = ts.map((t, i) => (order[i] === liveIdx ? t.recall : null));
  const plot = new uPlot({
    width: width(host), height: 360,
    scales: { x: { time: false } },
    series: [
      { label: "p50 µs" },
      { label: "trial", stroke: "#2563eb", paths: () => null, points: { show: true, size: 9, fill: "#2563eb" } },
      { label: "Pareto front", stroke: "#059669", width: 2, spanGaps: true, points: { show: false } },
      { label: "live", stroke: "#dc2626", paths: () => null, points: { show: true, size: 16, width: 3, fill: "transparent" } },
    ],
    axes: [{ label: "p50 latency (µs)" }, { label: "recall@k" }],
    hooks: {
      ready: [(u) => {
        u.over.addEventListener("click", () => {
          const i = u.cursor.idx;
          if (i !== null && i !== undefined) onPick(order[i]);
        });
      }],
    },
  }, [xs, ys, front, live], host);
  return plot;
}

export function chartFrame(label) {
  return h("figure", { class: "chart", "aria-label": label });
}
