// The calendar: month, week, day and list views over the key's calendars (a checkbox and a colour
// each), in this device's time zone or a calendar's, on the vendored EventCalendar with our own
// toolbar. Only the visible window is fetched (occurrences come expanded); it is polled every few
// seconds so changes made elsewhere (an agent, a sync) show up, and re-drawn only when they did.
// Click an event for its dialog, select a range (or "New event") to create, drag or resize to
// reschedule (reverted, with the API's message, when the API says no).
import { get, patch } from "/assets/api.js";
import { h, toast } from "/assets/ui.js";
import {
  addDays,
  askScope,
  dateString,
  deviceZone,
  fromWall,
  holdLeft,
  localParts,
  markers,
  offsetString,
  openEventDialog,
  parseWall,
  readOnlyReason,
  toWall,
  zoneLabel,
  zoneParts,
} from "/assets/pages/event-form.js";

const VIEWS = [
  ["dayGridMonth", "Month", "month"],
  ["timeGridWeek", "Week", "week"],
  ["timeGridDay", "Day", "day"],
  ["listWeek", "List", "list"],
];
const UNIT = { dayGridMonth: "month", timeGridWeek: "week", timeGridDay: "day", listWeek: "week" };
const PALETTE = ["#1d4ed8", "#047857", "#b91c1c", "#7e22ce", "#a15c07", "#0e7490", "#be185d", "#4d7c0f", "#4338ca", "#9f1239"];
const POLL_MS = 3000;
const LOOKBACK_DAYS = 7; // events that started before the window and still run into it
const PAGE = 200;
const MAX_SHOWN = 12;
const PREFS = "chronary.calendar";
const PHONE = "(max-width: 720px)";
const TABLE_ROLES = new Set(["table", "list", "row", "rowgroup", "cell", "columnheader", "rowheader", "listitem", "gridcell"]);

let scriptLoading = null;
function loadEventCalendar() {
  if (window.EventCalendar) return Promise.resolve();
  if (!scriptLoading) {
    scriptLoading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/vendor/event-calendar/event-calendar.min.js";
      s.onload = () => resolve();
      s.onerror = () => {
        scriptLoading = null;
        s.remove();
        reject(new Error("The calendar component could not load"));
      };
      document.head.append(s);
    });
  }
  return scriptLoading;
}

let cssLoading = null;
function loadCss() {
  if (!cssLoading) {
    cssLoading = new Promise((resolve) => {
      const link = h("link", { rel: "stylesheet", href: "/assets/pages/calendar.css" });
      link.addEventListener("load", () => resolve());
      link.addEventListener("error", () => resolve());
      document.head.append(link);
    });
  }
  return cssLoading;
}

function lockIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "mark-icon lock");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5a1 1 0 0 1 1 1v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1h.5zm1.5 0h4V5a2 2 0 0 0-4 0v2z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

function hash(text) {
  let x = 2166136261;
  for (let i = 0; i < text.length; i++) x = Math.imul(x ^ text.charCodeAt(i), 16777619);
  return x >>> 0;
}

function textOn(color) {
  const m = /^#([0-9a-f]{6})$/i.exec(color) || /^#([0-9a-f]{3})$/i.exec(color);
  if (!m) return "#ffffff";
  const hex = m[1].length === 3 ? [...m[1]].map((c) => c + c).join("") : m[1];
  const lin = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const lum = 0.2126 * lin(0) + 0.7152 * lin(2) + 0.0722 * lin(4);
  return (1.05 / (lum + 0.05)) >= ((lum + 0.05) / 0.05) ? "#ffffff" : "#111111";
}

function colorCalendars(list) {
  const used = new Set();
  return list.map((cal) => {
    const own = cal.color || (cal.metadata && typeof cal.metadata.color === "string" ? cal.metadata.color : null);
    let color = own && CSS.supports("color", own) ? own : null;
    if (!color) {
      let i = hash(cal.id) % PALETTE.length;
      for (let n = 0; n < PALETTE.length && used.has(PALETTE[i]); n++) i = (i + 1) % PALETTE.length;
      color = PALETTE[i];
      used.add(color);
    }
    return { ...cal, color, text: textOn(color) };
  });
}

function readPrefs() {
  try {
    return JSON.parse(sessionStorage.getItem(PREFS) || "{}") || {};
  } catch {
    return {};
  }
}

function writePrefs(prefs) {
  try {
    sessionStorage.setItem(PREFS, JSON.stringify(prefs));
  } catch {
    /* private mode: preferences are not kept */
  }
}

// The days a view shows around a date (the same rule as EventCalendar's, weeks from Monday),
// so the first window is fetched while the calendar script is still loading.
function guessRange(view, date) {
  const p = parseWall(date);
  const dow = (new Date(Date.UTC(p.y, p.mo - 1, p.d)).getUTCDay() + 6) % 7;
  if (view === "timeGridDay") return [date, addDays(date, 1)];
  if (view === "dayGridMonth") {
    // whole weeks from the one holding the 1st to the one holding the last day
    const weekday = (d) => (new Date(`${d}T00:00:00Z`).getUTCDay() + 6) % 7;
    const first = `${date.slice(0, 8)}01`;
    const last = addDays(`${addDays(first, 31).slice(0, 8)}01`, -1);
    return [addDays(first, -weekday(first)), addDays(last, 7 - weekday(last))];
  }
  const start = addDays(date, -dow);
  return [start, addDays(start, 7)];
}

export default async function render(root, ctx) {
  const cssReady = loadCss();
  const scriptReady = loadEventCalendar();
  scriptReady.catch(() => {});
  const prefs = readPrefs();
  const phone = window.matchMedia(PHONE).matches;
  const fromRoute = VIEWS.find(([, , short]) => short === ctx.params[0]);
  const routeDate = /^\d{4}-\d{2}-\d{2}$/.test(ctx.params[1] || "") ? ctx.params[1] : null;

  const state = {
    calendars: [],
    hidden: new Set(prefs.hidden || []),
    zone: prefs.zone || deviceZone(),
    view: fromRoute ? fromRoute[0] : phone ? "timeGridDay" : "timeGridWeek",
    range: null, // {startStr, endStr, from: Date, to: Date}
    cache: new Map(), // calendar id → {key, events, sig}
    inflight: new Map(), // `${calendar id} ${key}` → Promise
    busy: 0, // drags, resizes, saves, dialogs
    generation: 0,
    ec: null,
    dialog: null,
    stopped: false,
  };
  const todayIn = (zone) => dateString(zoneParts(new Date(), zone));
  const teardown = [];
  ctx.onCleanup(() => {
    // registered first thing: another page may open while this one is still loading
    state.stopped = true;
    teardown.forEach((fn) => {
      try {
        fn();
      } catch {
        /* already gone */
      }
    });
  });

  // Everything goes in one element of this render: if the page is left while it is still
  // loading, the late render takes its element away and stops.
  const own = h("div", { class: "cal-root" });
  root.append(own);
  const stale = () => {
    if (state.stopped || (ctx.signal && ctx.signal.aborted) || !own.isConnected) {
      own.remove();
      return true;
    }
    return false;
  };
  own.append(h("h1", { class: "sr-only" }, "Calendar"));
  const status = h("div", { class: "cal-status", role: "status", "aria-live": "polite" });
  const alertBox = h("div", { class: "cal-alert", role: "alert" });
  own.append(status, alertBox);
  status.textContent = "Loading calendars…";

  let calendars;
  try {
    const listed = [];
    const path = ctx.isOrg ? "calendars" : `agents/${ctx.agentId}/calendars`;
    const query = ctx.isOrg ? { include: "all" } : {};
    for (let offset = 0; ; offset += PAGE) {
      const page = await get(path, { ...query, limit: PAGE, offset });
      listed.push(...page.data);
      if (listed.length >= page.total || !page.data.length) break;
    }
    calendars = listed;
  } catch (err) {
    if (stale()) return;
    status.textContent = "";
    alertBox.append(h("p", { class: "alert" }, `Your calendars could not be loaded: ${err.message}`));
    return;
  }
  await cssReady;
  if (stale()) return;
  status.textContent = "";
  if (!calendars.length) {
    own.append(
      h(
        "div",
        { class: "empty" },
        h("p", {}, "There are no calendars yet. Events live in a calendar: create one, then come back here."),
        h("a", { class: "button", href: "#/calendars" }, "Create a calendar"),
      ),
    );
    return;
  }
  state.calendars = colorCalendars(calendars);
  if (!prefs.hidden && state.calendars.length > MAX_SHOWN) {
    // many agents' calendars: start with a dozen shown (each shown one is fetched and polled)
    state.calendars.slice(MAX_SHOWN).forEach((c) => state.hidden.add(c.id));
  }
  const zones = [...new Set(state.calendars.map((c) => c.timezone))];
  if (state.zone !== deviceZone() && !zones.includes(state.zone)) state.zone = deviceZone();
  const initialDate = routeDate || todayIn(state.zone);

  // Fetch the guessed first window at once.
  const visible = () => state.calendars.filter((c) => !state.hidden.has(c.id));
  {
    const [s, e] = guessRange(state.view, initialDate);
    state.range = rangeOf(s, e);
    visible().forEach((c) => load(c, state.range).catch(() => {}));
  }

  function rangeOf(startStr, endStr) {
    const from = fromWall(parseWall(addDays(startStr, -LOOKBACK_DAYS)), state.zone);
    const to = fromWall(parseWall(endStr), state.zone);
    return { startStr, endStr, from, to, key: `${from.toISOString()} ${to.toISOString()}` };
  }

  async function fetchWindow(cal, range) {
    const out = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await get(`calendars/${cal.id}/events`, {
        start_after: range.from.toISOString(),
        start_before: range.to.toISOString(),
        limit: PAGE,
        offset,
      });
      out.push(...page.data);
      if (out.length >= page.total || !page.data.length) break;
    }
    return out;
  }

  function load(cal, range, { fresh = false } = {}) {
    const k = `${cal.id} ${range.key}`;
    if (!fresh) {
      const cached = state.cache.get(cal.id);
      if (cached && cached.key === range.key) return Promise.resolve(false);
    }
    if (state.inflight.has(k)) return state.inflight.get(k);
    const p = fetchWindow(cal, range)
      .then((events) => {
        const sig = `${events.length}|${events.map((e) => `${e.id}@${e.updated_at}@${e.status}`).join(",")}`;
        const cached = state.cache.get(cal.id);
        const changed = !cached || cached.key !== range.key || cached.sig !== sig;
        if (changed) state.cache.set(cal.id, { key: range.key, events, sig });
        return changed;
      })
      .finally(() => state.inflight.delete(k));
    state.inflight.set(k, p);
    return p;
  }

  // ---- the page
  const title = h("h2", { class: "cal-title", "aria-live": "polite" }, "");
  const prevBtn = h("button", { type: "button", class: "secondary icon", "aria-label": "Previous week", onclick: () => state.ec && state.ec.prev() }, "‹");
  const nextBtn = h("button", { type: "button", class: "secondary icon", "aria-label": "Next week", onclick: () => state.ec && state.ec.next() }, "›");
  const todayBtn = h(
    "button",
    { type: "button", class: "secondary", onclick: () => state.ec && state.ec.setOption("date", todayIn(state.zone)) },
    "Today",
  );
  const viewButtons = VIEWS.map(([id, label]) =>
    h("button", { type: "button", class: "secondary", "aria-pressed": String(id === state.view), dataset: { view: id }, onclick: () => setView(id) }, label),
  );
  const newBtn = h("button", { type: "button", class: "cal-new", onclick: () => newEvent() }, "New event");
  const bar = h(
    "div",
    { class: "cal-bar" },
    h("div", { class: "cal-nav", role: "group", "aria-label": "Dates" }, todayBtn, prevBtn, nextBtn),
    title,
    h("div", { class: "cal-views", role: "group", "aria-label": "View" }, viewButtons),
    newBtn,
  );

  const calList = h(
    "ul",
    { class: "cal-list" },
    state.calendars.map((cal) => {
      const id = `cal-toggle-${cal.id}`;
      const box = h("input", { type: "checkbox", id, checked: !state.hidden.has(cal.id), dataset: { calendar: cal.id } });
      box.addEventListener("change", () => {
        if (box.checked) state.hidden.delete(cal.id);
        else state.hidden.add(cal.id);
        savePrefs();
        refresh();
      });
      return h(
        "li",
        {},
        box,
        h(
          "label",
          { for: id },
          h("span", { class: "swatch", style: `background:${cal.color}`, "aria-hidden": "true" }),
          h("span", { class: "cal-name" }, cal.name, cal.agent_id ? h("span", { class: "muted cal-owner", dataset: { agent: cal.agent_id } }) : null),
        ),
      );
    }),
  );
  const zoneId = "cal-zone";
  const device = deviceZone();
  const zoneOptions = [[device, `This device (${zoneLabel(device)})`]];
  for (const z of zones) {
    if (z === device) continue;
    const names = state.calendars.filter((c) => c.timezone === z).map((c) => c.name);
    zoneOptions.push([z, `${zoneLabel(z)} (${names.slice(0, 2).join(", ")}${names.length > 2 ? "…" : ""})`]);
  }
  const zoneSelect = h(
    "select",
    { id: zoneId, name: "zone" },
    zoneOptions.map(([v, t]) => h("option", { value: v, selected: v === state.zone }, t)),
  );
  zoneSelect.addEventListener("change", () => setZone(zoneSelect.value));
  const side = h(
    "details",
    { class: "cal-side", open: !phone },
    h("summary", {}, "Calendars and time zone"),
    h("fieldset", { class: "cal-filter" }, h("legend", {}, "Calendars"), calList),
    h("div", { class: "field" }, h("label", { for: zoneId }, "Time zone"), zoneSelect),
  );
  const host = h("div", { class: "cal-host" });
  own.append(h("div", { class: "cal-page" }, bar, alertBox, h("div", { class: "cal-body" }, side, host)));

  if (ctx.isOrg && state.calendars.some((c) => c.agent_id)) {
    get("agents", { limit: 200 })
      .then((page) => {
        const names = new Map(page.data.map((a) => [a.id, a.name]));
        calList.querySelectorAll("[data-agent]").forEach((el) => {
          const name = names.get(el.dataset.agent);
          if (name) el.textContent = ` · ${name}`;
        });
      })
      .catch(() => {});
  }

  function savePrefs() {
    writePrefs({ hidden: [...state.hidden], zone: state.zone });
  }

  function showError(message) {
    alertBox.replaceChildren();
    if (!message) return;
    alertBox.append(
      h(
        "p",
        { class: "alert" },
        message,
        " ",
        h("button", { type: "button", class: "secondary", onclick: () => refresh({ fresh: true }) }, "Try again"),
      ),
    );
  }

  // ---- events on the grid
  function toEc(ev, cal) {
    const allDay = !!(ev.all_day && ev.start_date);
    const classNames = [`is-${ev.status}`];
    if (ev.read_only) classNames.push("is-readonly");
    if (ev.recurring_event_id) classNames.push("is-occurrence");
    return {
      id: ev.id,
      allDay,
      start: allDay ? ev.start_date : toWall(ev.start_time, state.zone),
      end: allDay ? ev.end_date || addDays(ev.start_date, 1) : toWall(ev.end_time, state.zone),
      title: ev.title,
      backgroundColor: cal.color,
      textColor: cal.text,
      classNames,
      styles: [`--cal-color: ${cal.color}`],
      editable: !ev.read_only,
      startEditable: !ev.read_only,
      durationEditable: !ev.read_only,
      extendedProps: { ev, calendarId: cal.id },
    };
  }

  function draw() {
    if (!state.ec || !state.range) return;
    const list = [];
    for (const cal of visible()) {
      const cached = state.cache.get(cal.id);
      if (!cached || cached.key !== state.range.key) continue;
      for (const ev of cached.events) list.push(toEc(ev, cal)); // EventCalendar shows those in view
    }
    state.ec.setOption("events", list);
  }

  async function refresh({ fresh = false, quiet = false } = {}) {
    const range = state.range;
    if (!range) return;
    const gen = ++state.generation;
    if (!quiet) status.textContent = "Loading events…";
    const cals = visible();
    const results = await Promise.allSettled(cals.map((c) => load(c, range, { fresh })));
    if (gen !== state.generation || state.stopped) return;
    if (!quiet) status.textContent = "";
    const failed = results.map((r, i) => [r, cals[i]]).filter(([r]) => r.status === "rejected");
    if (failed.length) {
      const [r, cal] = failed[0];
      showError(`Events of “${cal.name}” could not be loaded: ${r.reason && r.reason.message ? r.reason.message : r.reason}`);
    } else showError(null);
    const changed = results.some((r) => r.status === "fulfilled" && r.value) || !fresh;
    if (changed) draw();
  }

  function tick() {
    document.querySelectorAll(".mark-hold[data-expires], .hold-left[data-expires]").forEach((el) => {
      const left = holdLeft({ hold_expires_at: el.dataset.expires });
      el.textContent = el.classList.contains("mark-hold") ? `Hold · ${left}` : ` ${left}`;
    });
    if (state.busy || state.dialog || document.hidden || state.stopped) return;
    const offset = offsetString(state.zone);
    if (state.ec && state.ec.getOption("timeZone") !== offset) {
      // the zone changed its offset (daylight saving): "now" and "today" follow
      state.ec.setOption("timeZone", offset);
      draw();
    }
    refresh({ fresh: true, quiet: true });
  }

  // An event on the grid: its state in words (not colour alone), icons for read-only and
  // repeating, the title, the time. Time grid: title and state first (short events are short);
  // month: time, title, state in one line; list: EventCalendar's time column, then the rest.
  function eventContent(info) {
    const ev = info.event.extendedProps && info.event.extendedProps.ev;
    if (!ev) return undefined;
    const type = info.view.type;
    let time = null;
    if (info.event.allDay) {
      if (type.startsWith("list")) time = h("span", { class: "ec-event-time" }, "All day");
    } else if (info.timeText) time = h("span", { class: "ec-event-time" }, info.timeText);
    const marks = markers(ev)
      .filter((m) => m.kind !== "readonly")
      .map((m) =>
        h("span", { class: `mark mark-${m.kind}`, dataset: m.kind === "hold" && ev.hold_expires_at ? { expires: ev.hold_expires_at } : {} }, m.text),
      );
    const t = h("span", { class: "ec-event-title" });
    if (ev.read_only) t.append(lockIcon(), h("span", { class: "sr-only" }, "Read-only: "));
    if (ev.recurring_event_id) t.append(h("span", { class: "mark-icon", "aria-hidden": "true" }, "↻"), h("span", { class: "sr-only" }, "Repeats: "));
    const name = h("span", { class: "ec-title-text" }, ev.title);
    if (type === "dayGridMonth") {
      t.append(name, ...marks.flatMap((m) => [" ", m]));
      return { domNodes: time ? [time, " ", t] : [t] };
    }
    t.append(...marks.flatMap((m) => [m, " "]), name);
    if (type.startsWith("list")) return { domNodes: time ? [time, " ", t] : [t] };
    return { domNodes: time ? [t, " ", time] : [t] };
  }

  function dialogDone() {
    state.dialog = null;
  }

  function writable() {
    return state.calendars;
  }

  function openDialog(options) {
    state.dialog = openEventDialog({
      calendars: writable(),
      zone: state.zone,
      onChange: () => refresh({ fresh: true, quiet: true }),
      onClose: dialogDone,
      ...options,
    });
  }

  function newEvent() {
    const first = visible()[0] || state.calendars[0];
    const viewDate = state.ec ? dateString(localParts(state.ec.getOption("date"))) : todayIn(state.zone);
    let start;
    if (viewDate === todayIn(state.zone)) start = new Date(Math.ceil(Date.now() / 3600000) * 3600000);
    else start = fromWall({ ...parseWall(viewDate), h: 9 }, state.zone);
    openDialog({ calendarId: first.id, start, end: new Date(start.getTime() + 3600000) });
  }

  async function seriesOf(ev) {
    return get(`calendars/${ev.calendar_id}/events/${encodeURIComponent(ev.recurring_event_id)}`);
  }

  async function onMove(info) {
    const ev = info.event.extendedProps.ev;
    state.busy++;
    try {
      const allDay = info.event.allDay;
      let body;
      if (allDay) {
        const s = dateString(localParts(info.event.start));
        const e = info.event.end ? dateString(localParts(info.event.end)) : addDays(s, 1);
        body = { start_time: s, end_time: e > s ? e : addDays(s, 1) };
      } else {
        const s = fromWall(localParts(info.event.start), state.zone);
        const e = info.event.end ? fromWall(localParts(info.event.end), state.zone) : new Date(s.getTime() + 3600000);
        body = { start_time: s.toISOString(), end_time: e.toISOString() };
      }
      if (allDay !== !!ev.all_day) body.all_day = allDay;
      let target = ev.id;
      if (ev.recurring_event_id) {
        const scope = await askScope("Move");
        if (!scope) {
          info.revert();
          return;
        }
        if (scope === "series") {
          if ("all_day" in body) {
            info.revert();
            showError("A whole series can't switch between all-day and timed by dragging: open the event to change it.");
            return;
          }
          const series = await seriesOf(ev);
          target = series.id;
          if (allDay) {
            const days = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);
            const startShift = days(ev.start_date, body.start_time);
            const length = days(body.start_time, body.end_time);
            body.start_time = addDays(series.start_date, startShift);
            body.end_time = addDays(body.start_time, length);
          } else {
            const shift = Date.parse(body.start_time) - Date.parse(ev.start_time);
            const length = Date.parse(body.end_time) - Date.parse(body.start_time);
            const s = Date.parse(series.start_time) + shift;
            body.start_time = new Date(s).toISOString();
            body.end_time = new Date(s + length).toISOString();
          }
        }
      }
      await patch(`calendars/${ev.calendar_id}/events/${encodeURIComponent(target)}`, body);
      showError(null);
      toast(`Moved “${ev.title}”`, "ok");
      await refresh({ fresh: true, quiet: true });
    } catch (err) {
      info.revert();
      showError(`“${ev.title}” could not be moved: ${err.message}`);
    } finally {
      state.busy--;
    }
  }

  function patchRoles() {
    // EventCalendar 5.10.1 marks its root role=table/list around non-row children (its toolbar,
    // day cells without rows in month view): axe calls those critical. The grid is a visual
    // layout here (the same events are buttons in it, and the list view reads as a list), so the
    // table roles go; its side columns are not landmarks; the scrolling pane can take focus.
    const el = host.querySelector(".ec");
    if (!el) return;
    for (const node of [el, ...el.querySelectorAll("[role]")]) {
      const role = node.getAttribute("role");
      if (role && TABLE_ROLES.has(role)) node.removeAttribute("role");
    }
    el.querySelectorAll("[aria-colindex],[aria-colspan],[aria-rowindex]").forEach((node) => {
      node.removeAttribute("aria-colindex");
      node.removeAttribute("aria-colspan");
      node.removeAttribute("aria-rowindex");
    });
    el.querySelectorAll("h4:not([aria-level])").forEach((node) => node.setAttribute("aria-level", "3"));
    el.querySelectorAll("aside:not([role])").forEach((node) => node.setAttribute("role", "none"));
    el.querySelectorAll(".ec-toolbar:not([hidden])").forEach((node) => {
      node.hidden = true;
      node.removeAttribute("tabindex");
    });
    const main = el.querySelector(".ec-main");
    if (main && !main.hasAttribute("tabindex")) {
      main.setAttribute("tabindex", "0");
      main.setAttribute("aria-label", "Calendar grid (scrolls)");
    }
  }
  const roleObserver = new MutationObserver(() => patchRoles());

  function setView(view) {
    if (!state.ec) return;
    state.view = view;
    state.ec.setOption("view", view);
  }

  function setZone(zone) {
    state.zone = zone;
    savePrefs();
    state.cache.clear();
    if (!state.ec) return;
    state.ec.setOption("timeZone", offsetString(zone));
    state.ec.setOption("events", []);
    const r = state.range;
    if (r) {
      state.range = rangeOf(r.startStr, r.endStr);
      refresh();
    }
  }

  function heightFor(view) {
    if (view.startsWith("list")) return "auto"; // a list is as long as its events
    return phone ? "max(420px, calc(100vh - 230px))" : "max(520px, calc(100vh - 190px))";
  }

  function onDates(info) {
    const startStr = dateString(localParts(info.start));
    const endStr = dateString(localParts(info.end));
    state.view = info.view.type;
    const unit = UNIT[state.view] || "period";
    prevBtn.setAttribute("aria-label", `Previous ${unit}`);
    nextBtn.setAttribute("aria-label", `Next ${unit}`);
    viewButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.view === state.view)));
    title.textContent = typeof info.view.title === "string" ? info.view.title : "";
    if (state.ec && state.ec.getOption("height") !== heightFor(state.view)) state.ec.setOption("height", heightFor(state.view));
    const next = rangeOf(startStr, endStr);
    const moved = !state.range || state.range.key !== next.key;
    state.range = next;
    if (state.ec) {
      const short = VIEWS.find(([id]) => id === state.view)[2];
      const date = dateString(localParts(state.ec.getOption("date")));
      const wanted = `#/calendar/${short}/${date}`;
      if (location.hash.startsWith("#/calendar") && location.hash !== wanted && state.touched) history.replaceState(null, "", wanted);
    }
    state.touched = true;
    if (!moved) draw();
    refresh({ quiet: !moved }); // joins the fetch already under way for this window, if any
    patchRoles();
  }

  try {
    await scriptReady;
  } catch (err) {
    if (!stale()) showError(err.message);
    return;
  }
  if (stale()) return;

  const EC = window.EventCalendar;
  state.ec = EC.create(host, {
    view: state.view,
    date: initialDate,
    timeZone: offsetString(state.zone),
    headerToolbar: { start: "", center: "", end: "" },
    height: heightFor(state.view),
    firstDay: 1,
    nowIndicator: true,
    scrollTime: "08:00:00",
    slotHeight: 28,
    dayMaxEvents: true,
    selectable: true,
    editable: true,
    events: [],
    eventContent,
    eventDidMount: (info) => {
      const ev = info.event.extendedProps && info.event.extendedProps.ev;
      if (ev && ev.read_only) info.el.title = readOnlyReason(ev);
      if (ev) info.el.dataset.eventId = ev.id;
    },
    eventClick: (info) => {
      // opened by Enter: keep its keypress from submitting the dialog's form at once
      if (info.jsEvent && info.jsEvent.type === "keydown") info.jsEvent.preventDefault();
      const ev = info.event.extendedProps.ev;
      if (ev) openDialog({ event: ev });
    },
    select: (info) => {
      const first = visible()[0] || state.calendars[0];
      if (info.allDay) {
        openDialog({
          calendarId: first.id,
          allDay: true,
          start: dateString(localParts(info.start)),
          end: dateString(localParts(info.end)),
        });
      } else {
        openDialog({
          calendarId: first.id,
          start: fromWall(localParts(info.start), state.zone),
          end: fromWall(localParts(info.end), state.zone),
        });
      }
      state.ec.unselect();
    },
    eventDragStart: () => state.busy++,
    eventDragStop: () => state.busy--,
    eventResizeStart: () => state.busy++,
    eventResizeStop: () => state.busy--,
    eventDrop: onMove,
    eventResize: onMove,
    datesSet: onDates,
    viewDidMount: () => patchRoles(),
    noEventsContent: "No events in this period.",
  });
  roleObserver.observe(host, { childList: true, subtree: true, attributes: true, attributeFilter: ["role"] });
  patchRoles();
  const timer = setInterval(tick, POLL_MS);
  const onVisible = () => {
    if (!document.hidden) tick();
  };
  document.addEventListener("visibilitychange", onVisible);
  teardown.push(
    () => clearInterval(timer),
    () => roleObserver.disconnect(),
    () => document.removeEventListener("visibilitychange", onVisible),
    () => state.dialog && state.dialog.open && state.dialog.close(),
    () => document.querySelectorAll("dialog.scope-dialog").forEach((d) => d.remove()),
    () => EC.destroy(state.ec),
  );
}
