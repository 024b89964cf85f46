// page_trials.js — an index's trials: recall against p50 latency with the Pareto front and
// the live settings marked, "promote" on a point (or from the table), and the generation
// history with rollback.
import { api, enc } from "./api.js";
import { h, field, select, table, section, badge, guarded, announce, fmtBytes } from "./dom.js";
import { trialsChart, chartFrame } from "./chart.js";
import { canWrite } from "./page_catalog.js";

const same = (t, s) => t.m === s.m && t.ef_construction === s.ef_construction &&
  t.ef_search === s.ef_search && (t.quantization || "none") === (s.quantization || "none");

export async function trialsPage({ view, args, me }) {
  const indexes = (await api("GET", "/vectors/indexes")).indexes || [];
  view.append(h("h1", {}, "Trials"));
  if (!indexes.length) { view.append(h("p", {}, "No vector indexes yet.")); return; }
  const name = args[0] && indexes.some((i) => i.name === args[0]) ? args[0] : indexes[0].name;
  const pick = select(indexes.map((i) => i.name), name);
  pick.addEventListener("change", () => { location.hash = `#/trials/${enc(pick.value)}`; });
  const out = h("div", { "aria-live": "polite" });
  view.append(h("div", { class: "filters" }, field("Index", pick)), out);

  const ix = await api("GET", `/vectors/indexes/${enc(name)}`);
  const trials = (await api("GET", `/vectors/hnsw/trials/${enc(name)}`)).trials || [];
  const live = ix.hnsw || {};
  const liveIdx = trials.findIndex((t) => same(t, live));
  const picked = h("div", { class: "card", "aria-live": "polite" },
    h("p", { class: "muted" }, "Click a point (or use Promote in the table) to choose a trial."));
  async function promote(t) {
    const r = await guarded(picked, () => api("POST", `/vectors/indexes/${enc(name)}/promote`, { trial_id: t.trial_id }));
    if (r) {
      picked.replaceChildren(h("p", { class: "ok" }, `Promoting ${t.trial_id}: job `,
        h("a", { href: "#/jobs" }, r.job_id), " builds the new generation."));
      announce(`Promotion started as job ${r.job_id}`);
    }
  }
  function choose(i) {
    const t = trials[i];
    picked.replaceChildren(
      h("p", {}, h("strong", {}, t.trial_id), ` m ${t.m}, ef_construction ${t.ef_construction}, ef_search ${t.ef_search}, ${t.quantization || "none"}: recall ${t.recall.toFixed(4)}, p50 ${t.p50_us} µs`),
      canWrite(me) ? h("button", { type: "button", class: "primary", onclick: () => promote(t) }, "Promote this point") : null);
  }
  const frame = chartFrame("Recall against p50 latency of the trials");
  out.append(h("p", {}, `Live: generation ${ix.generation}, m ${live.m}, ef_construction ${live.ef_construction}, ef_search ${live.ef_search}, ${live.quantization}`));
  if (trials.length) {
    out.append(frame, picked);
    requestAnimationFrame(() => trialsChart(frame, trials, liveIdx, choose));
    out.append(section("All trials", table(trials.map((t, i) => ({ ...t, i })), [
      ["trial_id", "Trial"], ["m", "m"], ["ef_construction", "efC"], ["ef_search", "ef"],
      ["quantization", "Quant."], ["recall", "Recall", (v) => v.toFixed(4)], ["p50_us", "p50 µs"],
      ["p95_us", "p95 µs"], ["memory_bytes", "Memory", fmtBytes],
      ["i", "", (i, t) => [i === liveIdx ? badge("live") : null,
        canWrite(me) ? h("button", { type: "button", onclick: () => promote(t), "aria-label": `Promote ${t.trial_id}` }, "Promote") : null]],
    ])));
  } else {
    out.append(h("p", {}, "No trials of this index yet: POST /vectors/hnsw/trial runs some."));
  }
  const gens = (ix.generations || []).slice().reverse();
  const gout = h("div", { "aria-live": "polite" });
  out.append(section("Generations", h("ol", { class: "timeline" }, gens.map((g) =>
    h("li", {}, `generation ${g.generation} `, g.live ? badge("live") : null))),
  canWrite(me) && gens.length > 1 ? h("button", {
    type: "button", onclick: async () => {
      const r = await guarded(gout, () => api("POST", `/vectors/indexes/${enc(name)}/rollback`, {}));
      if (r) { gout.replaceChildren(h("p", { class: "ok" }, `Generation ${r.generation} is live again.`)); announce("Rolled back"); }
    },
  }, "Roll back to the previous generation") : null, gout));
}
