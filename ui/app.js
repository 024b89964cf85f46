// app.js — the console's shell: sign-in, the section links, and the hash router
// (#/catalog, #/datasets/NAME, #/sql, #/search, #/trials, #/jobs, #/storage, #/agents).
import { api, token, setToken, setUnauthorizedHandler } from "./api.js";
import { h, field, errorBox, guarded } from "./dom.js";
import { catalogPage, datasetPage } from "./page_catalog.js";
import { sqlPage } from "./page_sql.js";
import { searchPage } from "./page_search.js";
import { trialsPage } from "./page_trials.js";
import { jobsPage } from "./page_jobs.js";
import { storagePage } from "./page_storage.js";
import { agentsPage } from "./page_agents.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
export const session = { me: null };

const pages = {
  catalog: catalogPage, datasets: datasetPage, sql: sqlPage, search: searchPage,
  trials: trialsPage, jobs: jobsPage, storage: storagePage, agents: agentsPage,
};

let leave = null; // the current page's clean-up (timers, aborts)

function signIn(message) {
  nav.hidden = true;
  who.replaceChildren();
  const input = h("input", { type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const out = h("div", { "aria-live": "polite" }, message ? errorBox(message) : null);
  const form = h("form", {
    class: "card signin", "aria-labelledby": "signin-title",
    onsubmit: async (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      const me = await guarded(out, () => api("GET", "/whoami"));
      if (me) {
        session.me = me;
        input.value = "";
        if (!location.hash || location.hash === "#/signin") location.hash = "#/catalog";
        route();
      } else {
        setToken(null);
      }
    },
  },
  h("h1", { id: "signin-title" }, "Sign in"),
  h("p", {}, "Paste a bearer token. It is kept for this tab only (sessionStorage) and sent as an Authorization header; it never appears in a URL."),
  field("Token", input),
  h("button", { type: "submit", class: "primary" }, "Sign in"),
  out);
  view.replaceChildren(form);
  input.focus();
}

function signOut() {
  setToken(null);
  session.me = null;
  signIn();
}

async function route() {
  if (leave) { leave(); leave = null; }
  if (!token()) return signIn();
  if (!session.me) {
    session.me = await guarded(null, () => api("GET", "/whoami"));
    if (!session.me) return;
  }
  nav.hidden = false;
  who.replaceChildren(h("span", { class: "muted" }, `${session.me.name} (${session.me.roles.join(", ")})`),
    h("button", { type: "button", onclick: signOut }, "Sign out"));
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "catalog").split("/");
  const page = pages[name] || catalogPage;
  for (const a of nav.querySelectorAll("a"))
    if (a.dataset.page === (name === "datasets" ? "catalog" : name)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  view.replaceChildren();
  const ctx = { view, args: rest.map(decodeURIComponent), me: session.me, onLeave: (f) => { leave = f; } };
  try {
    await page(ctx);
  } catch (e) {
    view.replaceChildren(errorBox(e));
  }
  document.title = `${view.querySelector("h1")?.textContent || "console"} — lakehouse`;
  if (document.activeElement === document.body) view.focus({ preventScroll: true });
}

setUnauthorizedHandler((e) => { setToken(null); session.me = null; signIn(e); });
window.addEventListener("hashchange", route);
route();
