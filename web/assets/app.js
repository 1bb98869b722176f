// The app shell: who is signed in, the navigation, and hash routes to one module per page.
// Each page module exports `default async function render(root, ctx)`; ctx carries the session,
// whether it is the org (`isOrg`) or one agent (`agentId`), the route's parameters, `navigate`,
// `signal` (aborted when the page is left; its container is detached then),
// and `onCleanup(fn)` for timers a page starts (run when another page opens).
import { session, signOut } from "/assets/api.js";
import { clear, h, toast } from "/assets/ui.js";

const PAGES = [
  ["calendar", "Calendar", true],
  ["agents", "Agents", true],
  ["calendars", "Calendars & feeds", true],
  ["availability", "Availability", true],
  ["proposals", "Proposals", true],
  ["subscriptions", "Subscriptions", true],
  ["connections", "Connections", false],
  ["webhooks", "Webhooks", false],
  ["keys", "API keys", true],
];

let cleanups = [];
let current = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "calendar", params: parts.slice(1) };
}

function navigate(hash) {
  if (location.hash === hash) show();
  else location.hash = hash;
}

async function show() {
  cleanups.forEach((fn) => {
    try {
      fn();
    } catch {
      /* a page's cleanup must not stop the next page */
    }
  });
  cleanups = [];
  const { name, params } = route();
  const known = PAGES.find(([id]) => id === name);
  const main = document.getElementById("main");
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  clear(main);
  if (!known || (!known[2] && !current.isOrg)) {
    cleanups = [];
    main.append(h("h1", {}, "Not found"), h("p", {}, "There is no such page. "), h("a", { href: "#/calendar" }, "Go to the calendar"));
    return;
  }
  document.title = `${known[1]} · Chronary`;
  // each page draws into its own container: one still loading when another opens is detached,
  // so its late results can't land on the new page (`ctx.signal` tells it it was left)
  const root = h("div", { class: "page", dataset: { page: name } });
  const left = new AbortController();
  cleanups.push(() => {
    left.abort();
    root.remove();
  });
  main.append(root);
  try {
    const module = await import(`/assets/pages/${name}.js`);
    await module.default(root, { ...current, params, navigate, signal: left.signal, onCleanup: (fn) => cleanups.push(fn) });
  } catch (err) {
    if (left.signal.aborted) return;
    console.warn(err);
    root.append(h("p", { class: "alert", role: "alert" }, `This page could not load: ${err.message || err}`));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  const info = await session();
  if (!info) {
    location.replace("/login");
    return;
  }
  current = { session: info, isOrg: info.agent_id === null, agentId: info.agent_id };
  const nav = document.getElementById("nav");
  nav.append(
    h(
      "ul",
      {},
      PAGES.filter(([, , agentToo]) => agentToo || current.isOrg).map(([id, label]) =>
        h("li", {}, h("a", { href: `#/${id}`, dataset: { page: id } }, label)),
      ),
    ),
  );
  const toggle = document.querySelector(".menu-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("nav-open", open);
  });
  nav.addEventListener("click", (e) => {
    if (e.target.closest("a")) {
      toggle.setAttribute("aria-expanded", "false");
      document.body.classList.remove("nav-open");
    }
  });
  const who = document.getElementById("who");
  who.append(
    h("span", { class: "scope" }, current.isOrg ? "Org" : `Agent ${info.agent_id}`),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async () => {
          await signOut();
          location.assign("/login");
        },
      },
      "Sign out",
    ),
  );
  window.addEventListener("hashchange", show);
  window.addEventListener("unhandledrejection", (e) => toast(e.reason && e.reason.message ? e.reason.message : "Something failed", "error"));
  await show();
}

start();
