// page_jobs.js — ingests, index builds and trials with live progress bars (polled each
// second while the page is open) and cancel.
import { api, enc } from "./api.js";
import { h, table, badge, guarded, announce } from "./dom.js";

function bar(j) {
  const p = j.progress || {};
  const done = p.done || 0, total = p.total;
  const label = total ? `${done} of ${total} ${p.unit || ""}` : `${done} ${p.unit || ""}`;
  const el = h("progress", { max: total || 1, value: total ? done : (j.state === "succeeded" ? 1 : 0), "aria-label": `${j.kind} ${j.id}: ${label}` });
  if (!total && j.state === "running") el.removeAttribute("value"); // indeterminate
  return h("span", { class: "progress" }, el, h("small", {}, ` ${label.trim()}`));
}

export async function jobsPage({ view, onLeave }) {
  const out = h("div");
  const err = h("div");
  view.append(h("h1", {}, "Jobs"), err, out);
  let timer = null;
  async function refresh() {
    const r = await guarded(err, () => api("GET", "/jobs"));
    if (!r) return;
    err.replaceChildren();
    const jobs = (r.jobs || []).slice().reverse();
    out.replaceChildren(jobs.length ? table(jobs, [
      ["id", "Job"], ["kind", "Kind"], ["owner", "Owner"], ["state", "State", (v) => badge(v)],
      ["progress", "Progress", (_, j) => bar(j)], ["created_at", "Created"],
      ["error", "Error", (e) => (e ? e.message : "")],
      ["id", "", (id, j) => (j.state === "queued" || j.state === "running") && !j.cancel_requested ?
        h("button", {
          type: "button", "aria-label": `Cancel ${id}`, onclick: async () => {
            if (await guarded(err, () => api("DELETE", `/jobs/${enc(id)}`))) { announce(`Cancel requested for ${id}`); refresh(); }
          },
        }, "Cancel") : (j.cancel_requested && j.state === "running" ? "cancelling…" : "")],
    ], { class: "jobs" }) : h("p", {}, "No jobs."));
  }
  await refresh();
  timer = setInterval(refresh, 1000);
  onLeave(() => clearInterval(timer));
}
