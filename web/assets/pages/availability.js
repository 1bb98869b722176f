// Availability (#/availability): one agent's busy and free time over a week
// (GET /v1/agents/{id}/availability), drawn as a week table with a strip per day (every busy
// block also written out as text), and "Find a time" for several agents
// (POST /v1/availability/find-meeting-time) with, for each slot found:
//   Hold this slot — a hold event (status hold) on each agent's first calendar
//                    (an agent key may only write its own calendars, so only its own);
//   Book it        — a proposal of that one slot, resolved at once: the API then creates the
//                    confirmed event on every agent's calendar in one transaction (and the
//                    proposal stays as the record of who was booked); holds placed here for
//                    that slot are released afterwards.
import { get, post } from "/assets/api.js";
import { clearErrors, empty, field, h, onSubmit, showError, toast } from "/assets/ui.js";
import {
  agentLabel,
  browserZone,
  checkGroup,
  checkedValues,
  dayLabel,
  ensureCss,
  pageView,
  failure,
  fieldBox,
  isoFromLocal,
  localInput,
  loadAgents,
  range,
  timeEl,
  timeOnly,
} from "/assets/pages/people-util.js";

const DAY = 86_400_000;

// The offset of `tz` at instant `ms` (local wall time minus UTC), in ms.
function offsetAt(ms, tz) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute), Number(p.second));
  return wall - Math.floor(ms / 1000) * 1000;
}

// The instant of midnight starting date y-m-d (month 1-based, day may overflow) in `tz`.
function midnight(y, m, d, tz) {
  const guess = Date.UTC(y, m - 1, d);
  let t = guess - offsetAt(guess, tz);
  t = guess - offsetAt(t, tz);
  return t;
}

// Today's date in `tz` as [y, m, d].
function today(tz) {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(new Date())
      .map((x) => [x.type, x.value]),
  );
  return [Number(p.year), Number(p.month), Number(p.day)];
}

function mondayOf([y, m, d]) {
  const wd = new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
  const back = (wd + 6) % 7;
  const t = new Date(Date.UTC(y, m - 1, d - back));
  return [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
}

function ymd([y, m, d]) {
  return `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

function hhmm(ms, tz) {
  return timeOnly(new Date(ms).toISOString(), tz);
}

export default async function render(main, ctx) {
  ensureCss();
  // everything goes in a view of its own: if another page opens while this one still loads,
  // the view is detached and late results land nowhere
  const root = pageView(main);
  root.append(h("h1", {}, "Availability"));
  let agents;
  try {
    agents = await loadAgents();
  } catch (err) {
    root.append(failure(`The agents could not be loaded: ${err.message}`));
    return;
  }
  if (agents.length === 0) {
    root.append(empty("No agents yet — create one on the Agents page, then see its busy and free time here.", h("a", { href: "#/agents" }, "Go to Agents")));
    return;
  }
  const week = weekSection(agents, ctx);
  root.append(week.section, await findSection(agents, ctx, week.load));
}

function weekSection(agents, ctx) {
  const mine = ctx.isOrg ? agents[0].id : ctx.agentId;
  const section = h("section", { class: "card", "aria-labelledby": "week-title" }, h("h2", { id: "week-title" }, "Busy and free in a week"));
  const me = browserZone();
  const state = { agentId: mine, zone: "agent", week: null };
  const agentSel = field("Agent", "agent", { tag: "select", options: agents.map((a) => [a.id, a.name]), value: mine });
  const zoneSel = field("Times in", "zone", { tag: "select", options: [["agent", "The agent's"], ["browser", `Yours (${me})`]], value: "agent" });
  const weekInput = field("Week of", "week", { type: "date" }, "Any day of the week; the week starts on Monday");
  const prev = h("button", { type: "button", class: "secondary" }, "← Previous week");
  const next = h("button", { type: "button", class: "secondary" }, "Next week →");
  const thisWeek = h("button", { type: "button", class: "secondary" }, "This week");
  const out = h("div", { class: "week-out", "aria-live": "polite" });
  section.append(h("div", { class: "form-grid compact" }, agentSel, zoneSel, weekInput), h("div", { class: "row week-nav" }, prev, thisWeek, next), out);

  const tzOf = () => {
    const a = agents.find((x) => x.id === state.agentId);
    return state.zone === "agent" && a ? a.timezone : me;
  };
  let token = 0;
  async function load() {
    const tz = tzOf();
    if (!state.week) state.week = mondayOf(today(tz));
    weekInput.querySelector("input").value = ymd(state.week);
    const [y, m, d] = state.week;
    const days = Array.from({ length: 8 }, (_, i) => midnight(y, m, d + i, tz));
    const mine = ++token;
    out.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    let av;
    try {
      av = await get(`/v1/agents/${encodeURIComponent(state.agentId)}/availability`, {
        start: new Date(days[0]).toISOString(),
        end: new Date(days[7]).toISOString(),
        slot_minutes: 15,
      });
    } catch (err) {
      if (mine === token) out.replaceChildren(failure(`Availability could not be loaded: ${err.message}`));
      return;
    }
    if (mine !== token) return;
    out.replaceChildren(weekTable(av, days, tz, agentLabel(agents, state.agentId)));
  }
  agentSel.querySelector("select").addEventListener("change", (e) => {
    state.agentId = e.target.value;
    load();
  });
  zoneSel.querySelector("select").addEventListener("change", (e) => {
    state.zone = e.target.value;
    load();
  });
  weekInput.querySelector("input").addEventListener("change", (e) => {
    const v = e.target.value;
    if (!v) return;
    const [y, m, d] = v.split("-").map(Number);
    state.week = mondayOf([y, m, d]);
    load();
  });
  const shift = (n) => {
    const [y, m, d] = state.week;
    const t = new Date(Date.UTC(y, m - 1, d + n));
    state.week = [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
    load();
  };
  prev.addEventListener("click", () => shift(-7));
  next.addEventListener("click", () => shift(7));
  thisWeek.addEventListener("click", () => {
    state.week = null;
    load();
  });
  load();
  return { section, load };
}

function clip(intervals, lo, hi) {
  return intervals
    .map((x) => [Math.max(Date.parse(x.start), lo), Math.min(Date.parse(x.end), hi), x])
    .filter(([s, e]) => e > s);
}

function weekTable(av, days, tz, name) {
  const rows = [];
  let busyCount = 0;
  for (let i = 0; i < 7; i += 1) {
    const lo = days[i];
    const hi = days[i + 1];
    const span = hi - lo;
    const busy = clip(av.busy, lo, hi);
    const free = clip(av.free, lo, hi);
    busyCount += busy.length;
    const text = (s, e) => `${hhmm(s, tz)}–${e === hi ? "24:00" : hhmm(e, tz)}`;
    const strip = h(
      "div",
      { class: "strip", "aria-hidden": "true" },
      [6, 12, 18].map((hr) => h("span", { class: "tick", style: `left:${(hr / 24) * 100}%` })),
      free.map(([s, e]) => h("span", { class: "free-block", style: `left:${((s - lo) / span) * 100}%;width:${((e - s) / span) * 100}%` })),
      busy.map(([s, e]) =>
        h("span", { class: "busy-block", style: `left:${((s - lo) / span) * 100}%;width:${((e - s) / span) * 100}%`, title: `Busy ${text(s, e)}` }),
      ),
    );
    rows.push(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, dayLabel(new Date(lo + DAY / 2), tz)),
        h(
          "td",
          {},
          strip,
          h(
            "ul",
            { class: "times" },
            busy.length
              ? busy.map(([s, e]) => h("li", { class: "busy-text" }, h("span", { class: "badge error" }, "Busy"), " ", timeEl(new Date(s).toISOString(), text(s, e))))
              : h("li", { class: "muted" }, "Not busy"),
          ),
          h("p", { class: "free-inline" }, "Free: ", free.length ? free.map(([s, e]) => text(s, e)).join(", ") : "none"),
        ),
        h("td", { class: "free-col" }, free.length ? free.map(([s, e]) => h("div", {}, text(s, e))) : h("span", { class: "muted" }, "No free time")),
      ),
    );
  }
  return h(
    "div",
    {},
    h("p", { class: "muted" }, `${name}: ${busyCount} busy block${busyCount === 1 ? "" : "s"} this week. Times in ${tz}. Free time follows the agent's working hours (always, if it has none).`),
    h(
      "div",
      { class: "legend", "aria-hidden": "true" },
      h("span", { class: "legend-item" }, h("span", { class: "busy-block sample" }), " busy"),
      h("span", { class: "legend-item" }, h("span", { class: "free-block sample" }), " free"),
      h("span", { class: "legend-item" }, "· the strip runs from 00:00 to 24:00"),
    ),
    h(
      "table",
      { class: "week" },
      h("caption", { class: "sr-only" }, `Busy and free time of ${name}, week of ${dayLabel(new Date(days[0] + DAY / 2), tz)}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, h("span", { class: "wide-only" }, "Busy"), h("span", { class: "phone-only" }, "Busy and free")), h("th", { scope: "col", class: "free-col" }, "Free"))),
      h("tbody", {}, rows),
    ),
  );
}

async function firstCalendar(agentId) {
  const page = await get(`/v1/agents/${encodeURIComponent(agentId)}/calendars`, { limit: 1 });
  return page.data[0] || null;
}

async function findSection(agents, ctx, changed) {
  const section = h("section", { class: "card", "aria-labelledby": "find-title" }, h("h2", { id: "find-title" }, "Find a time"));
  const start = new Date();
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  const end = new Date(start.getTime() + 7 * DAY);
  const options = agents.map((a) => [a.id, `${a.name} (${a.timezone})`, { disabled: !ctx.isOrg && a.id === ctx.agentId }]);
  const form = h(
    "form",
    { novalidate: true, class: "find" },
    checkGroup("Agents", "agent_ids", options, ctx.isOrg ? [] : [ctx.agentId], "Everyone who must be free: two or more."),
    ctx.isOrg
      ? null
      : fieldBox("Other agents' IDs", "other_agent_ids", { attrs: { autocomplete: "off", spellcheck: "false", placeholder: "agt_…, agt_…" } }, "An agent key sees only its own agent: type the others' IDs, separated by commas."),
    h(
      "div",
      { class: "form-grid" },
      field("Meeting title", "title", { value: "Meeting", attrs: { maxlength: 500, autocomplete: "off" } }, "Used when you hold or book a slot"),
      field("Duration (minutes)", "duration_minutes", { type: "number", value: 30, attrs: { min: 1, max: 1440, inputmode: "numeric" } }),
      field("From", "start", { type: "datetime-local", value: localInput(start) }, `Your time zone (${browserZone()})`),
      field("Until", "end", { type: "datetime-local", value: localInput(end) }),
      field("Start on a grid of (minutes)", "slot_step_minutes", { type: "number", value: 15, attrs: { min: 1, max: 1440, inputmode: "numeric" } }),
      field("How many slots", "limit", { type: "number", value: 10, attrs: { min: 1, max: 100, inputmode: "numeric" } }),
      field("Holds last", "hold_expires_at", {
        tag: "select",
        value: "15",
        options: [
          ["15", "15 minutes"],
          ["60", "1 hour"],
          ["1440", "1 day"],
          ["10080", "7 days"],
        ],
      }),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Find a time")),
  );
  const results = h("div", { class: "found", "aria-live": "polite" });
  section.append(form, results);

  const chosen = () => {
    const ids = checkedValues(form, "agent_ids");
    if (!ctx.isOrg && !ids.includes(ctx.agentId)) ids.unshift(ctx.agentId);
    const extra = form.querySelector('[name="other_agent_ids"]');
    if (extra && extra.value.trim()) ids.push(...extra.value.split(/[\s,;]+/).filter(Boolean));
    return ids;
  };

  onSubmit(form, async (v) => {
    const ids = chosen();
    results.replaceChildren(h("p", { class: "loading" }, "Looking…"));
    let found;
    try {
      found = await post("/v1/availability/find-meeting-time", {
        agent_ids: ids,
        start: isoFromLocal(v.start) ?? "",
        end: isoFromLocal(v.end) ?? "",
        duration_minutes: v.duration_minutes,
        slot_step_minutes: v.slot_step_minutes ?? undefined,
        limit: v.limit ?? undefined,
      });
    } catch (err) {
      results.replaceChildren();
      throw err;
    }
    const names = ids.map((id) => agentLabel(agents, id));
    if (found.slots.length === 0) {
      results.replaceChildren(empty(`No time when ${names.join(", ")} are all free for ${v.duration_minutes} minutes. Try a wider window or a shorter meeting.`));
      return;
    }
    results.replaceChildren(
      h("h3", { id: "found-title" }, `${found.slots.length} slot${found.slots.length === 1 ? "" : "s"} when ${names.join(", ")} are all free`),
      h(
        "ol",
        { class: "slots", "aria-labelledby": "found-title" },
        found.slots.map((slot, i) => slotItem(slot, i, ids, agents, ctx, form, changed)),
      ),
    );
  });
  return section;
}

function slotItem(slot, i, ids, agents, ctx, form, changed) {
  const label = h("span", { id: `slot-${i}`, class: "slot-time" }, timeEl(slot.start, range(slot.start, slot.end)));
  const status = h("div", { class: "slot-status", role: "status" });
  const holds = []; // [{calendar_id, event_id}]
  const hold = h("button", { type: "button", class: "secondary", "aria-describedby": `slot-${i}` }, "Hold this slot");
  const book = h("button", { type: "button", "aria-describedby": `slot-${i}` }, "Book it");
  const li = h("li", { class: "slot", dataset: { start: slot.start, end: slot.end } }, h("div", { class: "row" }, label, h("span", { class: "row slot-actions" }, hold, book)), status);

  const title = () => form.querySelector('[name="title"]').value.trim() || "Meeting";
  const fail = (err, what) => {
    if (err && err.param && form.querySelector(`[name="${CSS.escape(String(err.param).split(/[.[]/)[0])}"]`)) showError(form, err);
    status.replaceChildren(h("p", { class: "alert", role: "alert" }, `${what}: ${err.message || err}`));
  };
  const busy = (on) => {
    hold.disabled = on;
    book.disabled = on;
  };

  hold.addEventListener("click", async () => {
    clearErrors(form);
    busy(true);
    const minutes = Number(form.querySelector('[name="hold_expires_at"]').value) || 15;
    const expires = new Date(Date.now() + minutes * 60_000).toISOString();
    const mine = ctx.isOrg ? ids : ids.filter((id) => id === ctx.agentId);
    const placed = [];
    try {
      for (const agentId of mine) {
        const cal = await firstCalendar(agentId);
        if (!cal) throw new Error(`${agentLabel(agents, agentId)} has no calendar yet — create one on the Calendars page`);
        const ev = await post(`/v1/calendars/${encodeURIComponent(cal.id)}/events`, {
          title: `Hold: ${title()}`,
          start_time: slot.start,
          end_time: slot.end,
          status: "hold",
          hold_expires_at: expires,
          metadata: { held_for: ids },
        });
        placed.push({ calendar_id: cal.id, event_id: ev.id, agent: agentLabel(agents, agentId), calendar: cal.name });
      }
    } catch (err) {
      for (const p of placed) {
        await post(`/v1/calendars/${encodeURIComponent(p.calendar_id)}/events/${encodeURIComponent(p.event_id)}/release`).catch(() => null);
      }
      fail(err, "The slot could not be held");
      busy(false);
      return;
    }
    holds.push(...placed);
    status.replaceChildren(
      h(
        "p",
        {},
        h("span", { class: "badge hold" }, "Held"),
        ` on ${placed.map((p) => `${p.agent}'s ${p.calendar}`).join(", ")} until ${timeOnly(expires)}.`,
        !ctx.isOrg && ids.length > mine.length ? " (An agent key holds only its own calendar; Book it books everyone.)" : "",
      ),
    );
    hold.disabled = true;
    hold.textContent = "Held";
    book.disabled = false;
    toast("Slot held", "ok");
    changed();
  });

  book.addEventListener("click", async () => {
    clearErrors(form);
    busy(true);
    const organizer = ctx.isOrg ? ids[0] : ctx.agentId;
    const minutes = Math.round((Date.parse(slot.end) - Date.parse(slot.start)) / 60_000);
    let proposal;
    try {
      proposal = await post("/v1/proposals", {
        title: title(),
        organizer_agent_id: organizer,
        participant_agent_ids: ids,
        candidate_slots: [{ start: slot.start, end: slot.end }],
        duration_minutes: minutes,
        hold_slots: false,
      });
      if (proposal.status !== "resolved") proposal = await post(`/v1/proposals/${encodeURIComponent(proposal.id)}/resolve`, { slot_index: 0 });
    } catch (err) {
      if (proposal && proposal.status === "open") await post(`/v1/proposals/${encodeURIComponent(proposal.id)}/cancel`).catch(() => null);
      fail(err, "The meeting could not be booked");
      busy(false);
      return;
    }
    for (const p of holds.splice(0)) {
      await post(`/v1/calendars/${encodeURIComponent(p.calendar_id)}/events/${encodeURIComponent(p.event_id)}/release`).catch(() => null);
    }
    const booked = proposal.participants.filter((p) => p.event_id);
    status.replaceChildren(
      h(
        "p",
        {},
        h("span", { class: "badge ok" }, "Booked"),
        ` “${proposal.title}” on the calendars of ${booked.map((p) => agentLabel(agents, p.agent_id)).join(", ")}. `,
        h("a", { href: "#/proposals" }, "See it under Proposals"),
        " · ",
        h("a", { href: "#/calendar" }, "Open the calendar"),
      ),
    );
    hold.disabled = true;
    book.disabled = true;
    book.textContent = "Booked";
    toast("Meeting booked", "ok");
    changed();
  });
  return li;
}

