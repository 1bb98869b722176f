// The event dialog (used by the calendar, exported for any page that shows events): an event's
// details and, when the key may change it, the form that edits it — title, times, all-day,
// description, location, status with hold expiry, transparency, reminders, recurrence (a simple
// picker writing RRULE lines plus the raw lines) — and confirm / release / cancel / delete.
// Inputs are named after the API fields, so the API's own validation message lands beside them.
//
// Also the time-zone arithmetic the calendar needs: EventCalendar knows fixed offsets only, so
// wall-clock times in an IANA zone (and back) are computed here with Intl.
import { del, get, patch, post } from "/assets/api.js";
import { clearErrors, confirmDialog, field, h, showError, toast } from "/assets/ui.js";

// ---------------------------------------------------------------------------------------------
// Time zones

const pad = (n, width = 2) => String(n).padStart(width, "0");
const partFormats = new Map();

export function deviceZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function partFormat(zone) {
  let f = partFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partFormats.set(zone, f);
  }
  return f;
}

// The wall clock of an instant in a zone: {y, mo, d, h, mi, s}.
export function zoneParts(date, zone) {
  const p = {};
  for (const { type, value } of partFormat(zone).formatToParts(date)) p[type] = value;
  return { y: +p.year, mo: +p.month, d: +p.day, h: +p.hour % 24, mi: +p.minute, s: +p.second };
}

// The wall clock of a Date's own (browser-local) fields: EventCalendar hands those out.
export function localParts(date) {
  return {
    y: date.getFullYear(),
    mo: date.getMonth() + 1,
    d: date.getDate(),
    h: date.getHours(),
    mi: date.getMinutes(),
    s: date.getSeconds(),
  };
}

export const dateString = (p) => `${pad(p.y, 4)}-${pad(p.mo)}-${pad(p.d)}`;
export const wallString = (p, seconds = true) =>
  `${dateString(p)}T${pad(p.h)}:${pad(p.mi)}${seconds ? `:${pad(p.s)}` : ""}`;

// "2026-03-02T10:00:00Z" → "2026-03-02T11:00:00" in Europe/Paris (a floating string).
export function toWall(iso, zone) {
  return wallString(zoneParts(new Date(iso), zone));
}

// Minutes east of UTC of a zone at an instant.
export function offsetMinutes(date, zone) {
  const p = zoneParts(date, zone);
  const asUtc = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

export function offsetString(zone, date = new Date()) {
  const m = offsetMinutes(date, zone);
  const a = Math.abs(m);
  return `${m < 0 ? "-" : "+"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// The instant a wall clock in a zone names (a time skipped by a DST change moves forward).
export function fromWall(p, zone) {
  const guess = Date.UTC(p.y, p.mo - 1, p.d, p.h || 0, p.mi || 0, p.s || 0);
  const first = offsetMinutes(new Date(guess), zone);
  let t = guess - first * 60000;
  const second = offsetMinutes(new Date(t), zone);
  if (second !== first) t = guess - second * 60000;
  return new Date(t);
}

// "2026-03-02" or "2026-03-02T10:30[:00]" → parts (null when it is not one).
export function parseWall(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(value || "");
  if (!m) return null;
  return { y: +m[1], mo: +m[2], d: +m[3], h: +(m[4] || 0), mi: +(m[5] || 0), s: +(m[6] || 0) };
}

export function addDays(dateStr, days) {
  const p = parseWall(dateStr);
  const t = new Date(Date.UTC(p.y, p.mo - 1, p.d + days));
  return `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

export function zoneLabel(zone) {
  return zone.replace(/_/g, " ");
}

// ---------------------------------------------------------------------------------------------
// How an event reads: its state markers (text as well as colour), times, why it is read-only

const PROVIDERS = { google: "Google", microsoft: "Microsoft", icloud: "iCloud", caldav: "CalDAV" };
const WEEKDAYS = [
  ["MO", "Mon", "Monday"],
  ["TU", "Tue", "Tuesday"],
  ["WE", "Wed", "Wednesday"],
  ["TH", "Thu", "Thursday"],
  ["FR", "Fri", "Friday"],
  ["SA", "Sat", "Saturday"],
  ["SU", "Sun", "Sunday"],
];

export function readOnlyReason(ev) {
  if (!ev || !ev.read_only) return null;
  if (ev.source === "external_ical") return "Imported from an iCal subscription — change it at the source";
  return `Mirrored from a read-only calendar of ${PROVIDERS[ev.source] || ev.source}`;
}

export function holdLeft(ev, now = Date.now()) {
  if (!ev.hold_expires_at) return "";
  const minutes = Math.ceil((new Date(ev.hold_expires_at).getTime() - now) / 60000);
  if (minutes <= 0) return "expiring";
  if (minutes < 120) return `${minutes} min left`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h left`;
  return `${Math.floor(minutes / 1440)} d left`;
}

// The text markers shown on the grid and in the dialog: [{kind, text}].
export function markers(ev, now = Date.now()) {
  const out = [];
  if (ev.status === "hold") {
    const left = holdLeft(ev, now);
    out.push({ kind: "hold", text: left ? `Hold · ${left}` : "Hold" });
  } else if (ev.status === "tentative") out.push({ kind: "tentative", text: "Tentative" });
  else if (ev.status === "cancelled") out.push({ kind: "cancelled", text: "Cancelled" });
  if (ev.read_only) out.push({ kind: "readonly", text: "Read-only" });
  return out;
}

export function formatWhen(ev, zone) {
  if (ev.all_day && ev.start_date) {
    const f = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeZone: "UTC" });
    const first = parseWall(ev.start_date);
    const last = parseWall(addDays(ev.end_date || addDays(ev.start_date, 1), -1));
    const a = new Date(Date.UTC(first.y, first.mo - 1, first.d));
    const b = new Date(Date.UTC(last.y, last.mo - 1, last.d));
    return `${a.getTime() === b.getTime() ? f.format(a) : f.formatRange(a, b)} · all day`;
  }
  const f = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: zone });
  return f.formatRange(new Date(ev.start_time), new Date(ev.end_time));
}

// ---------------------------------------------------------------------------------------------
// Recurrence: a simple picker over one RRULE line, the raw lines beside it

export function parseRule(lines) {
  const out = { freq: "none", interval: 1, byday: [], end: "never", count: 10, until: "", custom: false };
  const rule = (lines || []).find((l) => /^RRULE:/i.test(l.trim()));
  if (!rule) {
    if ((lines || []).some((l) => l.trim())) out.custom = true;
    return out;
  }
  const parts = Object.fromEntries(
    rule
      .trim()
      .slice(6)
      .split(";")
      .filter(Boolean)
      .map((kv) => {
        const [k, ...v] = kv.split("=");
        return [k.toUpperCase(), v.join("=").toUpperCase()];
      }),
  );
  const freq = { DAILY: "daily", WEEKLY: "weekly", MONTHLY: "monthly" }[parts.FREQ];
  const known = new Set(["FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL", "WKST"]);
  const unknown = Object.keys(parts).some((k) => !known.has(k));
  const plainDays = !parts.BYDAY || parts.BYDAY.split(",").every((d) => WEEKDAYS.some(([c]) => c === d));
  if (!freq || unknown || !plainDays || (parts.BYDAY && freq !== "weekly")) {
    out.freq = "custom";
    out.custom = true;
    return out;
  }
  out.freq = freq;
  out.interval = Math.max(1, parseInt(parts.INTERVAL || "1", 10) || 1);
  out.byday = parts.BYDAY ? parts.BYDAY.split(",") : [];
  if (parts.COUNT) {
    out.end = "count";
    out.count = parseInt(parts.COUNT, 10) || 1;
  } else if (parts.UNTIL) {
    out.end = "until";
    out.until = parts.UNTIL;
  }
  return out;
}

function untilValue(raw, zone) {
  // UNTIL=20260331T215959Z (timed) or UNTIL=20260331 (all day) → "2026-03-31" in the zone.
  const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?$/.exec(raw || "");
  if (!m) return "";
  if (!m[4]) return `${m[1]}-${m[2]}-${m[3]}`;
  if (!m[7]) return `${m[1]}-${m[2]}-${m[3]}`;
  const d = new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return dateString(zoneParts(d, zone));
}

export function buildRule(r, { allDay, zone }) {
  if (r.freq === "none" || r.freq === "custom") return null;
  const parts = [`FREQ=${r.freq.toUpperCase()}`];
  if (r.interval > 1) parts.push(`INTERVAL=${r.interval}`);
  if (r.freq === "weekly" && r.byday.length) parts.push(`BYDAY=${r.byday.join(",")}`);
  if (r.end === "count") parts.push(`COUNT=${r.count}`);
  if (r.end === "until" && r.until) {
    const p = parseWall(r.until);
    if (p) {
      if (allDay) parts.push(`UNTIL=${r.until.replace(/-/g, "")}`);
      else {
        const end = fromWall({ ...p, h: 23, mi: 59, s: 59 }, zone);
        parts.push(`UNTIL=${end.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "")}`);
      }
    }
  }
  return `RRULE:${parts.join(";")}`;
}

export function describeRule(lines, zone) {
  const r = parseRule(lines);
  if (r.freq === "none") return r.custom ? "Custom recurrence" : "";
  if (r.freq === "custom") return `Repeats: ${lines.join(" ")}`;
  const unit = { daily: "day", weekly: "week", monthly: "month" }[r.freq];
  let text = r.interval > 1 ? `Every ${r.interval} ${unit}s` : { daily: "Daily", weekly: "Weekly", monthly: "Monthly" }[r.freq];
  if (r.byday.length) text += ` on ${r.byday.map((c) => WEEKDAYS.find(([d]) => d === c)[1]).join(", ")}`;
  if (r.end === "count") text += `, ${r.count} times`;
  if (r.end === "until") text += `, until ${untilValue(r.until, zone)}`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// Small dialogs

// "This occurrence" / "The whole series" for a change to one occurrence of a series.
export function askScope(what = "Change") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm scope-dialog", "aria-labelledby": "scope-title" },
      h("h2", { id: "scope-title" }, `${what} a repeating event`),
      h("p", {}, `${what} only this occurrence, or every occurrence of the series?`),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "button", class: "secondary", onclick: () => close("series") }, "The whole series"),
        h("button", { type: "button", onclick: () => close("occurrence"), autofocus: true }, "This occurrence"),
      ),
    );
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---------------------------------------------------------------------------------------------
// The event dialog

function checkField(label, name, checked, help) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  return h(
    "div",
    { class: "field check" },
    h("input", {
      type: "checkbox",
      id,
      name,
      checked: !!checked,
      "aria-describedby": `${id}-error${help ? ` ${id}-help` : ""}`,
    }),
    h("label", { for: id }, label),
    help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }),
  );
}

function remindersText(list) {
  if (list === null || list === undefined) return "";
  if (list.length === 0) return "none";
  return list.join(", ");
}

function parseReminders(text) {
  const t = text.trim();
  if (!t) return null;
  if (/^none$/i.test(t)) return [];
  return t.split(/[\s,;]+/).filter(Boolean).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

function splitLines(text) {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

// The form's view of an event: strings in the display zone, comparable for a diff.
function valuesOf(ev, zone) {
  const allDay = !!ev.all_day;
  return {
    title: ev.title || "",
    all_day: allDay,
    start: allDay ? ev.start_date : toWall(ev.start_time, zone).slice(0, 16),
    end: allDay ? addDays(ev.end_date, -1) : toWall(ev.end_time, zone).slice(0, 16),
    status: ev.status,
    hold_expires_at: ev.hold_expires_at ? toWall(ev.hold_expires_at, zone).slice(0, 16) : "",
    location: ev.location || "",
    description: ev.description || "",
    transparency: ev.transparency || "opaque",
    reminders: remindersText(ev.reminders),
    recurrence: (ev.recurrence || []).join("\n"),
  };
}

function timesBody(v, zone) {
  if (v.all_day) {
    const last = parseWall(v.end) ? v.end : v.start;
    return { start_time: v.start, end_time: parseWall(last) ? addDays(last, 1) : v.end };
  }
  const s = parseWall(v.start);
  const e = parseWall(v.end);
  return {
    start_time: s && v.start.includes("T") ? fromWall(s, zone).toISOString() : v.start,
    end_time: e && v.end.includes("T") ? fromWall(e, zone).toISOString() : v.end,
  };
}

function instantOrRaw(value, zone) {
  const p = parseWall(value);
  return p && value.includes("T") ? fromWall(p, zone).toISOString() : value;
}

/**
 * Open the event dialog.
 *   event: an API event, or null for a new one
 *   calendars: [{id, name, timezone, color}] the key may write to (a new event picks one)
 *   calendarId: the calendar a new event goes to by default
 *   zone: the IANA zone times are shown and entered in
 *   start, end: Date instants (timed) or "YYYY-MM-DD" (all day, end exclusive) for a new event
 *   onChange(): after anything was saved; onClose(): when the dialog is gone
 */
export function openEventDialog({ event = null, calendars = [], calendarId, zone, start, end, allDay = false, onChange, onClose }) {
  zone = zone || deviceZone();
  const isNew = !event;
  const calendarOf = (id) => calendars.find((c) => c.id === id);
  const calendar = calendarOf(event ? event.calendar_id : calendarId) || calendars[0];
  const seriesId = event && event.recurring_event_id;
  const readOnly = !!(event && event.read_only);
  const titleId = `ed-title-${Math.random().toString(36).slice(2, 7)}`;
  const changed = () => {
    try {
      onChange && onChange();
    } catch {
      /* the page refreshes itself too */
    }
  };

  let original;
  if (event) original = valuesOf(event, zone);
  else {
    const s = start instanceof Date ? start : null;
    const e = end instanceof Date ? end : null;
    if (allDay) {
      const first = typeof start === "string" ? start : dateString(zoneParts(s || new Date(), zone));
      const endEx = typeof end === "string" ? end : addDays(first, 1);
      original = { ...valuesOf({ all_day: true, start_date: first, end_date: endEx, status: "confirmed" }, zone), title: "" };
    } else {
      const from = s || new Date(Math.ceil(Date.now() / 3600000) * 3600000);
      const to = e || new Date(from.getTime() + 3600000);
      original = valuesOf({ start_time: from.toISOString(), end_time: to.toISOString(), status: "confirmed" }, zone);
    }
  }

  const dialog = h("dialog", { class: "event-dialog", "aria-labelledby": titleId });
  const close = () => {
    if (!dialog.open) return;
    dialog.close();
  };
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose && onClose();
  });

  const head = h(
    "header",
    { class: "ed-head" },
    h("h2", { id: titleId }, isNew ? "New event" : event.title),
    h("button", { type: "button", class: "secondary ed-close", "aria-label": "Close dialog", onclick: close }, "×"),
  );
  dialog.append(head);

  // Details of an existing event.
  let repeats = null;
  if (event) {
    const info = h("dl", { class: "ed-details" });
    const add = (term, ...value) => info.append(h("dt", {}, term), h("dd", {}, ...value));
    add("When", formatWhen(event, zone), event.all_day ? null : h("span", { class: "muted" }, ` (${zoneLabel(zone)})`));
    if (calendar) add("Calendar", h("span", { class: "swatch", style: `background:${calendar.color}`, "aria-hidden": "true" }), calendar.name);
    const marks = markers(event);
    add(
      "Status",
      h("span", { class: `badge ${{ hold: "hold", tentative: "tentative", cancelled: "error", confirmed: "ok" }[event.status] || ""}` }, event.status),
      marks.filter((m) => m.kind === "hold").map((m) => h("span", { class: "muted hold-left", dataset: { expires: event.hold_expires_at || "" } }, ` ${m.text}`)),
    );
    if (event.location) add("Where", event.location);
    if (event.transparency === "transparent") add("Shows as", "Free (does not block availability)");
    if (event.source && event.source !== "internal") add("Source", { external_ical: "iCal subscription" }[event.source] || PROVIDERS[event.source] || event.source);
    repeats = h("span", {}, seriesId ? "Part of a repeating series" : "");
    if (seriesId || event.recurrence) add("Repeats", repeats);
    if (event.recurrence) repeats.textContent = describeRule(event.recurrence, zone);
    if (readOnly && event.description) add("Notes", h("span", { class: "pre" }, event.description));
    dialog.append(info);
    if (readOnly) {
      dialog.append(h("p", { class: "banner ed-readonly", role: "note" }, readOnlyReason(event)));
      dialog.append(
        h("div", { class: "actions" }, h("button", { type: "button", onclick: close, autofocus: true }, "Close")),
      );
      document.body.append(dialog);
      dialog.showModal();
      return dialog;
    }
  }

  // The form.
  const form = h("form", { class: "ed-form", novalidate: true });
  if (isNew && calendars.length > 1) {
    form.append(
      field("Calendar", "calendar_id", {
        tag: "select",
        value: calendar && calendar.id,
        options: calendars.map((c) => [c.id, c.name]),
      }),
    );
  }
  const titleField = field("Title", "title", { value: original.title, attrs: { required: true, maxlength: 500, autofocus: true, autocomplete: "off" } });
  form.append(titleField);
  form.append(checkField("All day", "all_day", original.all_day));
  const when = h("div", { class: "ed-when" });
  form.append(when);
  form.append(h("p", { class: "help ed-zone" }, `Times in ${zoneLabel(zone)}`));

  const statusOptions = [
    ["confirmed", "Confirmed"],
    ["tentative", "Tentative"],
    ["hold", "Hold (expires unless confirmed)"],
  ];
  if (original.status === "cancelled") statusOptions.push(["cancelled", "Cancelled"]);
  const statusRow = h("div", { class: "ed-pair" });
  statusRow.append(
    field("Status", "status", { tag: "select", value: original.status, options: statusOptions }),
    field("Show as", "transparency", {
      tag: "select",
      value: original.transparency,
      options: [
        ["opaque", "Busy"],
        ["transparent", "Free"],
      ],
    }),
  );
  form.append(statusRow);
  const holdBox = h(
    "div",
    { class: "ed-hold" },
    field("Hold expires", "hold_expires_at", { type: "datetime-local", value: original.hold_expires_at }, "Empty: 15 minutes from now."),
    checkField("Place it even if it overlaps a confirmed event", "allow_overlap", false),
  );
  form.append(holdBox);
  form.append(field("Location", "location", { value: original.location, attrs: { maxlength: 1000 } }));
  form.append(field("Description", "description", { tag: "textarea", value: original.description, attrs: { rows: 3 } }));
  form.append(
    field(
      "Reminders",
      "reminders",
      { value: original.reminders, attrs: { inputmode: "numeric", autocomplete: "off", placeholder: "e.g. 10, 60" } },
      "Minutes before the start, comma-separated, up to 5. Empty: the calendar's default; “none”: no reminders.",
    ),
  );

  // Recurrence.
  const rec = h("fieldset", { class: "ed-recurrence" }, h("legend", {}, "Repeat"));
  const freq = field("Repeats", "rec_freq", {
    tag: "select",
    options: [
      ["none", "Does not repeat"],
      ["daily", "Daily"],
      ["weekly", "Weekly"],
      ["monthly", "Monthly"],
      ["custom", "Custom (see the lines below)"],
    ],
  });
  const interval = field("Every", "rec_interval", { type: "number", value: "1", attrs: { min: 1, max: 999, inputmode: "numeric" } });
  const dayBoxes = h(
    "fieldset",
    { class: "ed-days" },
    h("legend", {}, "On"),
    WEEKDAYS.map(([code, short, long]) => {
      const id = `d-${code}-${Math.random().toString(36).slice(2, 6)}`;
      return h(
        "span",
        { class: "ed-day" },
        h("input", { type: "checkbox", id, name: "rec_day", value: code, "aria-label": long }),
        h("label", { for: id, "aria-hidden": "true" }, short),
      );
    }),
  );
  const endSel = field("Repeat ends", "rec_end", {
    tag: "select",
    options: [
      ["never", "Never"],
      ["count", "After a number of times"],
      ["until", "On a date"],
    ],
  });
  const countF = field("Times", "rec_count", { type: "number", value: "10", attrs: { min: 1, max: 1000, inputmode: "numeric" } });
  const untilF = field("Last date", "rec_until", { type: "date" });
  const lines = field(
    "Recurrence lines",
    "recurrence",
    { tag: "textarea", value: original.recurrence, attrs: { rows: 3, spellcheck: "false", class: "mono" } },
    "RRULE, EXDATE and RDATE lines (RFC 5545), one per line. The picker above writes the RRULE line.",
  );
  const advanced = h("details", { class: "ed-advanced" }, h("summary", {}, "Advanced: recurrence lines"), lines);
  const recRow = h("div", { class: "ed-pair" }, freq, interval);
  const endRow = h("div", { class: "ed-pair" }, endSel, countF, untilF);
  rec.append(recRow, dayBoxes, endRow, advanced);
  const recNote = h("p", { class: "help" });
  if (seriesId) {
    recNote.textContent = "Loading the series…";
    rec.append(recNote);
    rec.disabled = true;
  }
  form.append(rec);

  const $ = (name) => form.querySelector(`[name="${name}"]`);
  const allDayBox = $("all_day");

  function renderWhen(values) {
    when.replaceChildren();
    const type = values.all_day ? "date" : "datetime-local";
    when.append(
      h(
        "div",
        { class: "ed-pair" },
        field(values.all_day ? "First day" : "Starts", "start_time", { type, value: values.start, attrs: { required: true } }),
        field(values.all_day ? "Last day" : "Ends", "end_time", { type, value: values.end, attrs: { required: true } }),
      ),
    );
    let previousStart = values.start;
    $("start_time").addEventListener("change", () => {
      // keep the length when the start moves
      const was = parseWall(previousStart);
      const now = parseWall($("start_time").value);
      const endP = parseWall($("end_time").value);
      if (was && now && endP) {
        const shift = Date.UTC(now.y, now.mo - 1, now.d, now.h, now.mi) - Date.UTC(was.y, was.mo - 1, was.d, was.h, was.mi);
        const e = new Date(Date.UTC(endP.y, endP.mo - 1, endP.d, endP.h, endP.mi) + shift);
        const ep = { y: e.getUTCFullYear(), mo: e.getUTCMonth() + 1, d: e.getUTCDate(), h: e.getUTCHours(), mi: e.getUTCMinutes(), s: 0 };
        $("end_time").value = values.all_day ? dateString(ep) : wallString(ep, false);
      }
      previousStart = $("start_time").value;
    });
  }
  renderWhen(original);
  allDayBox.addEventListener("change", () => {
    const s = $("start_time").value;
    const e = $("end_time").value;
    if (allDayBox.checked) {
      const first = s.slice(0, 10);
      let last = e.slice(0, 10) || first;
      if (e.endsWith("T00:00") && last > first) last = addDays(last, -1);
      renderWhen({ all_day: true, start: first, end: last < first ? first : last });
    } else {
      const first = s.slice(0, 10);
      const last = e.slice(0, 10) || first;
      renderWhen({ all_day: false, start: `${first}T09:00`, end: `${last}T10:00` });
    }
  });

  function syncHold() {
    holdBox.hidden = $("status").value !== "hold";
  }
  $("status").addEventListener("change", syncHold);
  syncHold();

  // picker ⇄ lines
  function readPicker() {
    return {
      freq: $("rec_freq").value,
      interval: Math.max(1, parseInt($("rec_interval").value, 10) || 1),
      byday: [...form.querySelectorAll('[name="rec_day"]:checked')].map((b) => b.value),
      end: $("rec_end").value,
      count: Math.max(1, parseInt($("rec_count").value, 10) || 1),
      until: $("rec_until").value,
    };
  }
  function showPicker() {
    const r = readPicker();
    const repeating = r.freq !== "none" && r.freq !== "custom";
    interval.hidden = !repeating;
    dayBoxes.hidden = r.freq !== "weekly";
    endRow.hidden = !repeating;
    countF.hidden = r.end !== "count";
    untilF.hidden = r.end !== "until";
    const unit = { daily: "days", weekly: "weeks", monthly: "months" }[r.freq];
    interval.querySelector("label").textContent = unit ? `Every (${unit})` : "Every";
  }
  function fillPicker(text) {
    const r = parseRule(splitLines(text));
    $("rec_freq").value = r.freq === "none" && r.custom ? "custom" : r.freq;
    $("rec_interval").value = String(r.interval);
    form.querySelectorAll('[name="rec_day"]').forEach((b) => (b.checked = r.byday.includes(b.value)));
    $("rec_end").value = r.end;
    $("rec_count").value = String(r.count);
    $("rec_until").value = r.end === "until" ? untilValue(r.until, zone) : "";
    showPicker();
  }
  function writeLines() {
    const r = readPicker();
    showPicker();
    if (r.freq === "custom") {
      advanced.open = true;
      return;
    }
    if (r.freq === "weekly" && !r.byday.length) {
      const p = parseWall($("start_time").value);
      if (p) {
        const dow = (new Date(Date.UTC(p.y, p.mo - 1, p.d)).getUTCDay() + 6) % 7;
        const box = form.querySelector(`[name="rec_day"][value="${WEEKDAYS[dow][0]}"]`);
        box.checked = true;
        r.byday = [WEEKDAYS[dow][0]];
      }
    }
    const rule = buildRule(r, { allDay: allDayBox.checked, zone });
    const kept = splitLines($("recurrence").value).filter((l) => !/^RRULE:/i.test(l));
    $("recurrence").value = (rule ? [rule, ...kept] : kept).join("\n");
  }
  rec.addEventListener("change", (e) => {
    if (e.target.name === "recurrence") fillPicker(e.target.value);
    else if (e.target.name && e.target.name.startsWith("rec_")) writeLines();
  });
  $("recurrence").addEventListener("input", (e) => fillPicker(e.target.value));
  fillPicker(original.recurrence);

  let series = null;
  if (seriesId) {
    get(`calendars/${event.calendar_id}/events/${encodeURIComponent(seriesId)}`)
      .then((found) => {
        series = found;
        original.recurrence = (found.recurrence || []).join("\n");
        $("recurrence").value = original.recurrence;
        fillPicker(original.recurrence);
        rec.disabled = false;
        recNote.textContent = "The repeat rule belongs to the whole series: changing it changes every occurrence.";
        if (found.recurrence && repeats) repeats.textContent = describeRule(found.recurrence, zone);
      })
      .catch((err) => {
        recNote.textContent = `The series could not be loaded: ${err.message}`;
      });
  }

  function current() {
    return {
      title: $("title").value,
      all_day: allDayBox.checked,
      start: $("start_time").value,
      end: $("end_time").value,
      status: $("status").value,
      hold_expires_at: $("hold_expires_at").value,
      location: $("location").value,
      description: $("description").value,
      transparency: $("transparency").value,
      reminders: $("reminders").value.trim(),
      recurrence: splitLines($("recurrence").value).join("\n"),
    };
  }

  // The API body for the given keys of the form's values.
  function bodyOf(v, keys) {
    const body = {};
    if (keys.has("title")) body.title = v.title;
    if (keys.has("start") || keys.has("end") || keys.has("all_day")) {
      Object.assign(body, timesBody(v, zone));
      if (keys.has("all_day") || isNew) body.all_day = v.all_day;
    }
    if (keys.has("status")) body.status = v.status;
    if (v.status === "hold" && (keys.has("hold_expires_at") || keys.has("status")) && v.hold_expires_at)
      body.hold_expires_at = instantOrRaw(v.hold_expires_at, zone);
    if (v.status === "hold" && $("allow_overlap").checked) body.allow_overlap = true;
    if (keys.has("location")) body.location = v.location || null;
    if (keys.has("description")) body.description = v.description || null;
    if (keys.has("transparency")) body.transparency = v.transparency;
    if (keys.has("reminders")) body.reminders = parseReminders(v.reminders);
    if (keys.has("recurrence")) body.recurrence = v.recurrence ? v.recurrence.split("\n") : null;
    if (isNew) {
      for (const k of ["location", "description", "reminders", "recurrence"]) if (body[k] === null) delete body[k];
    }
    return body;
  }

  // A change to the whole series from one occurrence: times move by the occurrence's shift.
  function seriesBody(body, v) {
    const out = { ...body };
    if ("start_time" in body && series) {
      if (v.all_day && series.all_day && event.all_day) {
        const days = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);
        const shift = days(event.start_date, body.start_time);
        const length = days(body.start_time, body.end_time);
        out.start_time = addDays(series.start_date, shift);
        out.end_time = addDays(out.start_time, length);
      } else if (!v.all_day && !series.all_day) {
        const shift = Date.parse(body.start_time) - Date.parse(event.start_time);
        const length = Date.parse(body.end_time) - Date.parse(body.start_time);
        const s = Date.parse(series.start_time) + shift;
        out.start_time = new Date(s).toISOString();
        out.end_time = new Date(s + length).toISOString();
      }
    }
    return out;
  }

  async function run(fn) {
    clearErrors(form);
    const buttons = dialog.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await fn();
    } catch (err) {
      // the API's message beside the field it names (the raw recurrence lines open for theirs),
      // else at the top of the form
      const param = err && err.param ? String(err.param).split(/[.[]/)[0] : null;
      if (param === "recurrence") advanced.open = true;
      showError(form, err);
      if (!param || !form.querySelector(`[name="${param}"]`)) {
        const alert = form.querySelector(".form-error");
        if (alert) alert.scrollIntoView({ block: "nearest" });
      }
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  const path = (id) => `calendars/${event.calendar_id}/events/${encodeURIComponent(id)}`;

  async function save() {
    const v = current();
    if (isNew) {
      const cid = ($("calendar_id") && $("calendar_id").value) || (calendar && calendar.id);
      if (!cid) throw new Error("Create a calendar first");
      const keys = new Set(Object.keys(v));
      await post(`calendars/${cid}/events`, bodyOf(v, keys));
      toast("Event created", "ok");
      changed();
      close();
      return;
    }
    const keys = new Set(Object.keys(v).filter((k) => v[k] !== original[k]));
    if (!keys.size && !$("allow_overlap").checked) {
      close();
      return;
    }
    const body = bodyOf(v, keys);
    let target = event.id;
    if (seriesId) {
      // the repeat rule is the series' own: changing it changes the series
      const scope = keys.has("recurrence") ? "series" : await askScope("Change");
      if (!scope) return;
      if (scope === "series") {
        target = seriesId;
        if (!series) series = await get(path(seriesId));
        Object.assign(body, seriesBody(body, v));
      } else delete body.recurrence;
    }
    if (!Object.keys(body).length) {
      close();
      return;
    }
    await patch(path(target), body);
    toast("Saved", "ok");
    changed();
    close();
  }

  async function remove() {
    let target = event.id;
    let label = `Delete “${event.title}”?`;
    if (seriesId) {
      const scope = await askScope("Delete");
      if (!scope) return;
      if (scope === "series") {
        target = seriesId;
        label = `Delete every occurrence of “${event.title}”?`;
      } else label = `Delete this occurrence of “${event.title}”?`;
    }
    if (!(await confirmDialog(label, "Delete"))) return;
    await del(path(target));
    toast("Deleted", "ok");
    changed();
    close();
  }

  async function cancelEvent() {
    let target = event.id;
    if (seriesId) {
      const scope = await askScope("Cancel");
      if (!scope) return;
      if (scope === "series") target = seriesId;
    }
    if (!(await confirmDialog(`Cancel “${event.title}”? It stays listed as cancelled.`, "Cancel event"))) return;
    await post(`${path(target)}/cancel`);
    toast("Cancelled", "ok");
    changed();
    close();
  }

  async function holdAction(kind) {
    if (kind === "release" && !(await confirmDialog(`Release the hold “${event.title}”? It is deleted.`, "Release"))) return;
    await post(`${path(event.id)}/${kind}`);
    toast(kind === "confirm" ? "Hold confirmed" : "Hold released", "ok");
    changed();
    close();
  }

  const actions = h("div", { class: "actions ed-actions" });
  if (!isNew) {
    const left = h("div", { class: "ed-left" });
    if (event.status === "hold") {
      left.append(
        h("button", { type: "button", onclick: () => run(() => holdAction("confirm")) }, "Confirm hold"),
        h("button", { type: "button", class: "secondary", onclick: () => run(() => holdAction("release")) }, "Release hold"),
      );
    }
    if (event.status !== "cancelled")
      left.append(h("button", { type: "button", class: "secondary", onclick: () => run(cancelEvent) }, "Cancel event"));
    left.append(h("button", { type: "button", class: "danger", onclick: () => run(remove) }, "Delete"));
    actions.append(left);
  }
  actions.append(
    h(
      "div",
      { class: "ed-right" },
      h("button", { type: "button", class: "secondary", onclick: close }, isNew ? "Cancel" : "Close"),
      h("button", { type: "submit" }, isNew ? "Create event" : "Save changes"),
    ),
  );
  form.append(actions);
  form.addEventListener("input", (e) => {
    // a field's error goes once it is being corrected
    const slot = e.target.id && document.getElementById(`${e.target.id}-error`);
    if (slot && slot.textContent) {
      slot.textContent = "";
      e.target.removeAttribute("aria-invalid");
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run(save);
  });
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
