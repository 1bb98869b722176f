// Helpers shared by the agents, calendars, availability and proposals pages (not a page itself):
// agent look-ups, a timezone field, datetime-local <-> ISO, error placement for dotted params
// ("candidate_slots[1].end"), checkbox groups, status badges, and the pages' own stylesheet.
import { all } from "/assets/api.js";
import { clearErrors, h, showError } from "/assets/ui.js";

let cssAdded = false;

export function ensureCss() {
  if (cssAdded || document.querySelector('link[data-people-css]')) return;
  cssAdded = true;
  document.head.append(h("link", { rel: "stylesheet", href: "/assets/pages/people.css", dataset: { peopleCss: "1" } }));
}

export function pageView(main) {
  const view = h("div", { class: "page-view" });
  main.append(view);
  return view;
}

// Every agent the key may see (an agent key: only its own), and a name look-up.
export async function loadAgents() {
  const agents = await all("/v1/agents");
  agents.sort((a, b) => a.name.localeCompare(b.name));
  return agents;
}

export function agentLabel(agents, id) {
  const a = agents.find((x) => x.id === id);
  return a ? a.name : id;
}

export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

let zoneList = null;
function zones() {
  if (zoneList) return zoneList;
  try {
    zoneList = Intl.supportedValuesOf("timeZone");
  } catch {
    zoneList = ["UTC"];
  }
  if (!zoneList.includes("UTC")) zoneList = ["UTC", ...zoneList];
  return zoneList;
}

// A timezone text input with the browser's IANA names as suggestions; any text goes to the API,
// which answers with its own message when the name is not a timezone.
export function tzField(label, name, value, help) {
  const listId = `tz-${Math.random().toString(36).slice(2, 8)}`;
  const box = fieldBox(label, name, { value, attrs: { list: listId, autocomplete: "off", spellcheck: "false" } }, help);
  box.append(h("datalist", { id: listId }, zones().map((z) => h("option", { value: z }))));
  return box;
}

// Like ui.field, but built here so a page can add its own things to it.
export function fieldBox(label, name, input = {}, help) {
  const id = `f-${name.replace(/[^a-z0-9_-]/gi, "-")}-${Math.random().toString(36).slice(2, 7)}`;
  let control;
  if (input.tag === "select") {
    control = h(
      "select",
      { id, name, ...input.attrs },
      (input.options || []).map(([v, t]) => h("option", { value: v, selected: v === input.value }, t)),
    );
  } else {
    control = h("input", { id, name, type: input.type || "text", value: input.value ?? "", ...input.attrs });
  }
  control.setAttribute("aria-describedby", `${id}-error${help ? ` ${id}-help` : ""}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }),
  );
}

// A group of checkboxes sharing `name` (e.g. agent_ids); the API's error for `name` or
// `name[i]` shows under the group (its slot belongs to the first box).
export function checkGroup(legend, name, options, checked = [], help) {
  const base = `g-${name}-${Math.random().toString(36).slice(2, 7)}`;
  const boxes = options.map(([value, text, extra], i) => {
    const id = i === 0 ? base : `${base}-${i}`;
    return h(
      "label",
      { class: "check", for: id },
      h("input", {
        type: "checkbox",
        id,
        name,
        value,
        checked: checked.includes(value),
        disabled: extra && extra.disabled,
        "aria-describedby": `${base}-error`,
      }),
      h("span", {}, text),
    );
  });
  return h(
    "fieldset",
    { class: "field checks" },
    h("legend", {}, legend),
    help ? h("p", { class: "help", id: `${base}-help` }, help) : null,
    h("div", { class: "check-list" }, boxes),
    h("p", { class: "field-error", id: `${base}-error`, role: "alert" }),
  );
}

export function checkedValues(form, name) {
  return [...form.querySelectorAll(`input[type="checkbox"][name="${CSS.escape(name)}"]`)]
    .filter((el) => el.checked)
    .map((el) => el.value);
}

// Show an API error beside the control named exactly by its param (e.g. "counter_slot.end",
// "candidate_slots[1].start"), else let ui.showError find the top-level field or the form top.
export function placeError(form, err) {
  const param = err && err.param ? String(err.param) : null;
  const exact = param ? form.querySelector(`[name="${CSS.escape(param)}"]`) : null;
  if (!exact) {
    showError(form, err);
    return;
  }
  clearErrors(form);
  const slot = document.getElementById(`${exact.id}-error`);
  if (slot) slot.textContent = err.message;
  exact.setAttribute("aria-invalid", "true");
  exact.focus();
}

// datetime-local values are the browser's local time; the API takes ISO 8601 with an offset.
export function isoFromLocal(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function timeOnly(iso, timeZone) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timeZone || undefined });
}

export function dayLabel(date, timeZone) {
  return date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", timeZone: timeZone || undefined });
}

// "Tue, Dec 2, 10:00 – 10:30" (the end's date only when it differs).
export function range(startIso, endIso, timeZone) {
  const s = new Date(startIso);
  const e = new Date(endIso);
  const sameDay = dayLabel(s, timeZone) === dayLabel(e, timeZone);
  const start = `${dayLabel(s, timeZone)}, ${timeOnly(startIso, timeZone)}`;
  return sameDay ? `${start} – ${timeOnly(endIso, timeZone)}` : `${start} – ${dayLabel(e, timeZone)}, ${timeOnly(endIso, timeZone)}`;
}

export function timeEl(iso, text) {
  return h("time", { datetime: iso }, text);
}

const BADGE = {
  active: "ok",
  resolved: "ok",
  confirmed: "ok",
  accept: "ok",
  idle: "",
  working: "ok",
  open: "tentative",
  pending: "tentative",
  counter: "tentative",
  tentative: "tentative",
  paused: "hold",
  waiting: "hold",
  hold: "hold",
  expired: "hold",
  decommissioned: "error",
  declined: "error",
  decline: "error",
  cancelled: "error",
  error: "error",
};

export function badge(status, text) {
  return h("span", { class: `badge ${BADGE[status] ?? ""}` }, text || status);
}

// A loading/error placeholder the page fills in.
export function failure(message) {
  return h("p", { class: "alert", role: "alert" }, message);
}
