// Proposals (#/proposals): meetings offered at candidate slots, who answered what, how each one
// resolved; proposing one (POST /v1/proposals), answering (POST …/respond: accept, decline or
// counter, for one slot or all), forcing a slot (…/resolve) and cancelling (…/cancel).
import { all, post } from "/assets/api.js";
import { clearErrors, confirmDialog, empty, field, h, onSubmit, toast, when } from "/assets/ui.js";
import {
  agentLabel,
  badge,
  checkGroup,
  checkedValues,
  ensureCss,
  pageView,
  failure,
  fieldBox,
  isoFromLocal,
  loadAgents,
  localInput,
  placeError,
  range,
  timeEl,
} from "/assets/pages/people-util.js";

const STATUSES = [
  ["", "Any status"],
  ["open", "Open"],
  ["resolved", "Resolved"],
  ["declined", "Declined"],
  ["cancelled", "Cancelled"],
  ["expired", "Expired"],
];
const HOUR = 3_600_000;
const lastAnswerer = new Map(); // proposal id -> agent id last answered for on this page

export default async function render(main, ctx) {
  ensureCss();
  // everything goes in a view of its own: if another page opens while this one still loads,
  // the view is detached and late results land nowhere
  const root = pageView(main);
  root.append(h("h1", {}, "Proposals"));
  let agents;
  try {
    agents = await loadAgents();
  } catch (err) {
    root.append(failure(`The agents could not be loaded: ${err.message}`));
    return;
  }
  if (agents.length === 0) {
    root.append(empty("No agents yet — create agents first, then propose a meeting between them.", h("a", { href: "#/agents" }, "Go to Agents")));
    return;
  }
  const filters = { status: "", agent_id: "" };
  const list = h("div", { class: "proposals", "aria-live": "polite" });
  const statusSel = field("Status", "status", { tag: "select", options: STATUSES, value: "" });
  const agentSel = ctx.isOrg ? field("Agent", "agent_id", { tag: "select", options: [["", "Every agent"], ...agents.map((a) => [a.id, a.name])], value: "" }) : null;
  const bar = h("div", { class: "form-grid compact filters", role: "search", "aria-label": "Filter proposals" }, statusSel, agentSel);
  const reload = async () => {
    list.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    let items;
    try {
      items = await all("/v1/proposals", filters, 500);
    } catch (err) {
      list.replaceChildren(failure(`The proposals could not be loaded: ${err.message}`));
      return;
    }
    if (items.length === 0) {
      list.replaceChildren(
        empty(
          filters.status || filters.agent_id ? "No proposals match these filters." : "No proposals yet — propose a meeting below; every participant can then accept or decline.",
        ),
      );
      return;
    }
    list.replaceChildren(...items.map((p) => proposalCard(p, agents, ctx, reload)));
  };
  statusSel.querySelector("select").addEventListener("change", (e) => {
    filters.status = e.target.value;
    reload();
  });
  agentSel?.querySelector("select").addEventListener("change", (e) => {
    filters.agent_id = e.target.value;
    reload();
  });
  root.append(bar, list, createForm(agents, ctx, reload));
  await reload();
}

function resolution(p, agents) {
  if (p.status === "resolved" && p.resolved_slot) {
    return h(
      "p",
      { class: "resolution" },
      h("strong", {}, "Booked: "),
      timeEl(p.resolved_slot.start, range(p.resolved_slot.start, p.resolved_slot.end)),
      ` (slot ${p.resolved_slot.index + 1}), on the calendars of ${p.participants.filter((x) => x.event_id).map((x) => agentLabel(agents, x.agent_id)).join(", ")}`,
      p.resolved_at ? h("span", { class: "muted" }, ` · resolved ${when(p.resolved_at)}`) : null,
    );
  }
  if (p.status === "declined") return h("p", { class: "resolution" }, h("strong", {}, "Declined: "), "no candidate slot works for everyone.");
  if (p.status === "cancelled") return h("p", { class: "resolution" }, h("strong", {}, "Cancelled"), " by the organizer; its holds were released.");
  if (p.status === "expired") return h("p", { class: "resolution" }, h("strong", {}, "Expired"), ` at ${when(p.expires_at)} without agreement.`);
  const waiting = p.participants.filter((x) => x.response === "pending").map((x) => agentLabel(agents, x.agent_id));
  return h(
    "p",
    { class: "resolution" },
    h("strong", {}, "Open: "),
    waiting.length ? `waiting for ${waiting.join(", ")}.` : "no slot accepted by everyone yet.",
    p.expires_at ? ` Expires ${when(p.expires_at)}.` : "",
  );
}

function proposalCard(p, agents, ctx, reload) {
  const open = p.status === "open";
  const manage = ctx.isOrg || ctx.agentId === p.organizer_agent_id;
  const titleId = `prp-${p.id}`;
  const names = (pred) =>
    p.participants
      .filter(pred)
      .map((x) => agentLabel(agents, x.agent_id))
      .join(", ") || "—";
  const act = async (fn, done) => {
    try {
      await fn();
      toast(done, "ok");
      reload();
    } catch (err) {
      toast(err.message, "error");
    }
  };
  const slotRows = p.candidate_slots.map((s) =>
    h(
      "tr",
      { class: p.resolved_slot_index === s.index ? "chosen" : null },
      h("th", { scope: "row" }, String(s.index + 1)),
      h("td", {}, timeEl(s.start, range(s.start, s.end)), s.proposed_by !== p.organizer_agent_id ? h("div", { class: "muted small" }, `counter from ${agentLabel(agents, s.proposed_by)}`) : null),
      h("td", {}, names((x) => x.accepted_slots.includes(s.index))),
      h("td", { class: "hide-phone" }, names((x) => x.declined_slots.includes(s.index))),
      open && manage
        ? h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "secondary small",
                "aria-label": `Book slot ${s.index + 1} of ${p.title} now`,
                onclick: async () => {
                  if (!(await confirmDialog(`Book “${p.title}” at ${range(s.start, s.end)} for everyone now, whatever their answers?`, "Book this slot"))) return;
                  act(() => post(`/v1/proposals/${encodeURIComponent(p.id)}/resolve`, { slot_index: s.index }), "Proposal resolved");
                },
              },
              "Book now",
            ),
          )
        : null,
    ),
  );
  const partRows = p.participants.map((x) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, agentLabel(agents, x.agent_id), x.agent_id === p.organizer_agent_id ? h("span", { class: "muted small" }, " (organizer)") : null),
      h("td", {}, badge(x.response)),
      h("td", { class: "hide-phone" }, x.responded_at ? when(x.responded_at) : "—"),
      h("td", {}, x.event_id ? h("span", { class: "id" }, x.event_id) : h("span", { class: "muted" }, "—")),
    ),
  );
  const card = h(
    "article",
    { class: "card proposal", "aria-labelledby": titleId, dataset: { id: p.id } },
    h("header", { class: "row" }, h("h2", { id: titleId }, p.title), badge(p.status)),
    h(
      "p",
      { class: "muted" },
      `Organized by ${agentLabel(agents, p.organizer_agent_id)} · ${p.duration_minutes} min · `,
      p.hold_slots ? "slots held on calendars" : "no holds",
      ` · proposed ${when(p.created_at)}`,
      h("span", { class: "id" }, ` · ${p.id}`),
    ),
    resolution(p, agents),
    h(
      "table",
      { class: "slots-table" },
      h("caption", {}, "Candidate slots"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "#"),
          h("th", { scope: "col" }, "Time"),
          h("th", { scope: "col" }, "Accepted by"),
          h("th", { scope: "col", class: "hide-phone" }, "Declined by"),
          open && manage ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")) : null,
        ),
      ),
      h("tbody", {}, slotRows),
    ),
    h(
      "table",
      { class: "parts-table" },
      h("caption", {}, "Answers"),
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, "Participant"), h("th", { scope: "col" }, "Answer"), h("th", { scope: "col", class: "hide-phone" }, "When"), h("th", { scope: "col" }, "Event")),
      ),
      h("tbody", {}, partRows),
    ),
  );
  if (open) {
    const answerable = p.participants.filter((x) => ctx.isOrg || x.agent_id === ctx.agentId);
    if (answerable.length) card.append(respondForm(p, answerable, agents, reload));
    if (manage) {
      card.append(
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-label": `Cancel proposal ${p.title}`,
              onclick: async () => {
                if (!(await confirmDialog(`Cancel “${p.title}”? Its holds are released and nobody can answer it any more.`, "Cancel proposal"))) return;
                act(() => post(`/v1/proposals/${encodeURIComponent(p.id)}/cancel`), "Proposal cancelled");
              },
            },
            "Cancel proposal",
          ),
        ),
      );
    }
  }
  return card;
}

function respondForm(p, answerable, agents, reload) {
  // who answers by default: whoever answered last here, else someone still pending, else not the organizer
  const pending =
    answerable.find((x) => x.agent_id === lastAnswerer.get(p.id)) ||
    answerable.find((x) => x.response === "pending") ||
    answerable.find((x) => x.agent_id !== p.organizer_agent_id) ||
    answerable[0];
  const counter = h(
    "div",
    { class: "form-grid counter", hidden: true },
    fieldBox("Counter slot start", "counter_slot.start", { type: "datetime-local", attrs: { disabled: true } }),
    fieldBox("Counter slot end", "counter_slot.end", { type: "datetime-local", attrs: { disabled: true } }),
  );
  const slotOptions = [["", "Every slot"], ...p.candidate_slots.map((s) => [String(s.index), `Slot ${s.index + 1}: ${range(s.start, s.end)}`])];
  const form = h(
    "form",
    { class: "respond", novalidate: true, "aria-label": `Answer ${p.title}` },
    h("h3", {}, "Answer"),
    h(
      "div",
      { class: "form-grid" },
      field("Answer as", "agent_id", { tag: "select", options: answerable.map((x) => [x.agent_id, agentLabel(agents, x.agent_id)]), value: pending.agent_id }),
      field("Answer", "response", { tag: "select", options: [["accept", "Accept"], ["decline", "Decline"], ["counter", "Propose another time"]], value: "accept" }),
      field("Slot", "slot_index", { tag: "select", options: slotOptions, value: "" }),
    ),
    counter,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send answer")),
  );
  const response = form.querySelector('[name="response"]');
  const slotSel = form.querySelector('[name="slot_index"]');
  response.addEventListener("change", () => {
    const isCounter = response.value === "counter";
    counter.hidden = !isCounter;
    counter.querySelectorAll("input").forEach((el) => (el.disabled = !isCounter));
    slotSel.disabled = isCounter;
    if (isCounter) {
      const last = p.candidate_slots[p.candidate_slots.length - 1];
      const start = new Date(Date.parse(last.start) + 24 * HOUR);
      const [s, e] = counter.querySelectorAll("input");
      if (!s.value) s.value = localInput(start);
      if (!e.value) e.value = localInput(new Date(start.getTime() + p.duration_minutes * 60_000));
    }
  });
  onSubmit(form, async (v) => {
    const body = { agent_id: v.agent_id, response: v.response };
    if (v.response === "counter") body.counter_slot = { start: isoFromLocal(v["counter_slot.start"]) ?? "", end: isoFromLocal(v["counter_slot.end"]) ?? "" };
    else if (v.slot_index !== "" && v.slot_index !== undefined) body.slot_index = Number(v.slot_index);
    lastAnswerer.set(p.id, v.agent_id);
    try {
      const out = await post(`/v1/proposals/${encodeURIComponent(p.id)}/respond`, body);
      toast(out.status === "resolved" ? "Answer sent — everyone agreed, the meeting is booked" : out.status === "declined" ? "Answer sent — the proposal is declined" : "Answer sent", "ok");
      reload();
    } catch (err) {
      placeError(form, err);
    }
  });
  return form;
}

function slotRow(i, startDate, duration, onRemove) {
  const row = h(
    "fieldset",
    { class: "slot-row" },
    h("legend", {}, `Slot ${i + 1}`),
    h(
      "div",
      { class: "form-grid" },
      fieldBox("Start", `candidate_slots[${i}].start`, { type: "datetime-local", value: localInput(startDate) }),
      fieldBox("End", `candidate_slots[${i}].end`, { type: "datetime-local", value: localInput(new Date(startDate.getTime() + duration * 60_000)) }, "At least the duration after the start"),
    ),
    i > 0 ? h("button", { type: "button", class: "secondary", onclick: onRemove, "aria-label": `Remove slot ${i + 1}` }, "Remove") : null,
  );
  return row;
}

function createForm(agents, ctx, reload) {
  const organizerOptions = (ctx.isOrg ? agents : agents.filter((a) => a.id === ctx.agentId)).map((a) => [a.id, a.name]);
  const slots = h("div", { class: "slot-rows" });
  const start = new Date(Date.now() + 24 * HOUR);
  start.setMinutes(0, 0, 0);
  start.setHours(10);
  const form = h(
    "form",
    { class: "card", id: "new-proposal", novalidate: true, "aria-labelledby": "new-proposal-title" },
    h("h2", { id: "new-proposal-title" }, "Propose a meeting"),
    h(
      "div",
      { class: "form-grid" },
      field("Title", "title", { attrs: { required: true, maxlength: 500, autocomplete: "off" } }),
      field("Organizer", "organizer_agent_id", { tag: "select", options: organizerOptions, value: ctx.isOrg ? organizerOptions[0]?.[0] : ctx.agentId }),
      field("Duration (minutes)", "duration_minutes", { type: "number", value: 30, attrs: { min: 1, max: 1440, inputmode: "numeric" } }),
      field("Expires (optional)", "expires_at", { type: "datetime-local" }, "Holds and answers end then; at most 7 days for holds"),
    ),
    checkGroup(
      "Participants",
      "participant_agent_ids",
      agents.map((a) => [a.id, a.name]),
      ctx.isOrg ? [] : [ctx.agentId],
      "Who must agree; include the organizer if it attends (it accepts its own slots).",
    ),
    ctx.isOrg
      ? null
      : fieldBox("Other participants' IDs", "other_participant_ids", { attrs: { autocomplete: "off", spellcheck: "false", placeholder: "agt_…, agt_…" } }, "An agent key sees only its own agent: type the others' IDs, separated by commas."),
    h("h3", {}, "Candidate slots"),
    slots,
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary", onclick: () => addSlot() }, "Add another slot")),
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "hold_slots", checked: true }),
      h("span", {}, "Hold every candidate slot on the participants' calendars until they answer"),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Propose")),
  );
  const duration = () => Number(form.querySelector('[name="duration_minutes"]').value) || 30;
  let lastDuration = duration();
  form.querySelector('[name="duration_minutes"]').addEventListener("change", () => {
    // ends that were "start + duration" follow the new duration
    const now = duration();
    for (const row of slots.querySelectorAll(".slot-row")) {
      const [s, e] = row.querySelectorAll("input");
      if (s.value && e.value && new Date(e.value) - new Date(s.value) === lastDuration * 60_000) e.value = localInput(new Date(new Date(s.value).getTime() + now * 60_000));
    }
    lastDuration = now;
  });
  function renumber() {
    const keep = [...slots.querySelectorAll(".slot-row")].map((row) => [...row.querySelectorAll("input")].map((el) => el.value));
    slots.replaceChildren();
    keep.forEach(([s, e], i) => {
      const row = slotRow(i, new Date(), duration(), () => removeSlot(i));
      const [a, b] = row.querySelectorAll("input");
      a.value = s;
      b.value = e;
      slots.append(row);
    });
  }
  function removeSlot(i) {
    slots.querySelectorAll(".slot-row")[i]?.remove();
    renumber();
    slots.querySelector(".slot-row:last-child input")?.focus();
  }
  function addSlot() {
    const rows = slots.querySelectorAll(".slot-row");
    if (rows.length >= 20) {
      toast("A proposal has at most 20 candidate slots", "error");
      return;
    }
    const last = rows.length ? rows[rows.length - 1].querySelector("input").value : null;
    const at = last ? new Date(new Date(last).getTime() + 24 * HOUR) : start;
    const i = rows.length;
    const row = slotRow(i, at, duration(), () => removeSlot(i));
    slots.append(row);
    if (rows.length) row.querySelector("input").focus();
  }
  addSlot();
  onSubmit(form, async (v) => {
    const ids = checkedValues(form, "participant_agent_ids");
    const extra = form.querySelector('[name="other_participant_ids"]');
    if (extra && extra.value.trim()) ids.push(...extra.value.split(/[\s,;]+/).filter(Boolean));
    const candidate = [...slots.querySelectorAll(".slot-row")].map((row) => {
      const [s, e] = row.querySelectorAll("input");
      return { start: isoFromLocal(s.value) ?? "", end: isoFromLocal(e.value) ?? "" };
    });
    const body = {
      title: v.title,
      organizer_agent_id: v.organizer_agent_id,
      participant_agent_ids: ids,
      candidate_slots: candidate,
      duration_minutes: v.duration_minutes,
      hold_slots: Boolean(v.hold_slots),
    };
    if (v.expires_at) body.expires_at = isoFromLocal(v.expires_at);
    try {
      const created = await post("/v1/proposals", body);
      toast(created.status === "resolved" ? "Proposed — and already agreed: the meeting is booked" : "Meeting proposed; the participants can answer now", "ok");
      clearErrors(form);
      form.querySelector('[name="title"]').value = "";
      await reload();
      document.getElementById(`prp-${created.id}`)?.scrollIntoView({ block: "center" });
    } catch (err) {
      // "candidate_slots[1].end" names one input; "participant_agent_ids[0]" the group.
      placeError(form, err);
    }
  });
  return form;
}
