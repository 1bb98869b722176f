// Webhooks (org only): endpoints that receive signed POSTs for chosen event types. The list
// (#/webhooks): add an endpoint (its signing secret shown once), pause/resume, edit, send a test,
// rotate the secret, delete. One endpoint's delivery log (#/webhooks/<id>): every delivery with
// its attempts (the delivery detail endpoint), redeliver; re-read while deliveries are pending.
import { all, del, get, patch, post } from "/assets/api.js";
import { clear, confirmDialog, copyButton, empty, field, h, onSubmit, section, toast, when } from "/assets/ui.js";

// The event types of spec/webhooks.md (chronary/webhooks/types.py): the OpenAPI document
// declares `events` as plain strings, so the list lives here.
const EVENT_TYPES = [
  "agent.created", "agent.updated", "agent.deleted",
  "calendar.created", "calendar.updated", "calendar.deleted",
  "event.created", "event.updated", "event.deleted", "event.cancelled",
  "event.hold_created", "event.hold_confirmed", "event.hold_released", "event.hold_expired",
  "event.started", "event.ended", "event.reminder",
  "proposal.created", "proposal.responded", "proposal.resolved", "proposal.cancelled",
  "ical_subscription.synced", "ical_subscription.failed",
  "connection.created", "connection.synced", "connection.error", "connection.deleted",
  "table.row_created", "table.row_updated", "table.row_deleted", "record.received",
];
const GROUPS = { agent: "Agents", calendar: "Calendars", event: "Events", proposal: "Proposals", ical_subscription: "iCal subscriptions", connection: "Connections", table: "Tables", record: "Records" };
const STATUS = { active: "ok", paused: "hold", disabled: "error" };
const DELIVERY = { pending: "", retrying: "hold", succeeded: "ok", failed: "error" };
const POLL_MS = 2000;

function useCss() {
  if (!document.getElementById("admin-css")) {
    document.head.append(h("link", { id: "admin-css", rel: "stylesheet", href: "/assets/pages/admin.css" }));
  }
}

function meta(pairs) {
  return h(
    "dl",
    { class: "meta" },
    pairs.filter(Boolean).map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))),
  );
}

// The event-type checkboxes, in a fieldset named "events" so that the API's "events[3]" error
// lands beside it (ui.showError). `read()` gives the list the API takes.
function eventPicker(selected = []) {
  const id = `g-events-${Math.random().toString(36).slice(2, 7)}`;
  const everything = h("input", { type: "checkbox", value: "*", checked: selected.includes("*") });
  const boxes = EVENT_TYPES.map((t) => h("input", { type: "checkbox", value: t, checked: selected.includes(t) }));
  const sync = () => boxes.forEach((b) => (b.disabled = everything.checked));
  everything.addEventListener("change", sync);
  sync();
  let last = "";
  const checks = [];
  EVENT_TYPES.forEach((t, i) => {
    const prefix = t.split(".")[0];
    if (prefix !== last) checks.push(h("h4", { "aria-hidden": "true" }, GROUPS[prefix] || prefix));
    last = prefix;
    checks.push(h("label", { class: "check" }, boxes[i], h("code", {}, t)));
  });
  const el = h(
    "fieldset",
    { class: "group", name: "events", id, tabindex: "-1", "aria-describedby": `${id}-error` },
    h("legend", {}, "Events to send"),
    h("label", { class: "check" }, everything, "All events, including types added later"),
    h("div", { class: "checks" }, checks),
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }),
  );
  const read = () => (everything.checked ? ["*"] : boxes.filter((b) => b.checked).map((b) => b.value));
  return { el, read };
}

function eventsText(events) {
  if (events.includes("*")) return "All events";
  return events.length <= 4 ? events.join(", ") : `${events.slice(0, 3).join(", ")} and ${events.length - 3} more`;
}

function secretCard(webhook, heading, onDone) {
  const card = h(
    "section",
    { class: "card secret-card", "aria-labelledby": `secret-${webhook.id}` },
    h("h2", { id: `secret-${webhook.id}` }, heading),
    h(
      "p",
      {},
      h("strong", {}, "Copy it now: it will not be shown again. "),
      "Your receiver checks each request with it: the Chronary-Webhook-Signature header is v1=HMAC-SHA256(secret, \"{timestamp}.{body}\").",
    ),
    h("div", { class: "secret", "aria-label": "Webhook signing secret" }, webhook.secret),
    h("div", { class: "row" }, copyButton(webhook.secret, "Copy secret"), h("button", { type: "button", class: "secondary", onclick: onDone }, "I have saved it")),
  );
  return card;
}

export default async function render(root, ctx) {
  useCss();
  let alive = true;
  let timer = null;
  ctx.onCleanup(() => {
    alive = false;
    clearTimeout(timer);
  });
  const agents = await all("agents");
  const agentName = new Map(agents.map((a) => [a.id, a.name]));
  const revealed = h("div", {});

  function reveal(webhook, heading) {
    clear(revealed).append(secretCard(webhook, heading, () => clear(revealed)));
    revealed.querySelector("button.copy").focus();
  }

  // -- one endpoint, as a card with its actions ----------------------------------------------
  function webhookCard(w, { onChange, onDelete, detail }) {
    const panel = h("div", { class: "panel", hidden: true });
    const li = h(
      "li",
      { class: "item", dataset: { id: w.id }, "aria-label": `Webhook ${w.url}` },
      h(
        "div",
        { class: "item-head" },
        h("h3", { class: "url" }, w.url),
        h("div", { class: "badges" }, h("span", { class: `badge ${STATUS[w.status] || ""}` }, w.status)),
      ),
      w.description ? h("p", { class: "muted" }, w.description) : null,
      w.status === "disabled"
        ? h("p", { class: "alert", role: "alert" }, `Disabled: ${w.disabled_reason || "deliveries kept failing"}. Fix the receiver, then resume.`)
        : w.status === "paused"
          ? h("p", { class: "banner" }, "Paused: deliveries wait until you resume.")
          : null,
      meta([
        ["Events", eventsText(w.events)],
        ["Agents", w.agent_id ? agentName.get(w.agent_id) || w.agent_id : "All agents"],
        ["Created", when(w.created_at)],
      ]),
      h(
        "div",
        { class: "actions" },
        detail ? null : h("a", { class: "button", href: `#/webhooks/${encodeURIComponent(w.id)}`, "aria-label": `Delivery log of ${w.url}` }, "Delivery log"),
        h("button", { type: "button", class: "secondary", onclick: () => sendTest(w) }, "Send a test"),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => setStatus(w, w.status === "active" ? "paused" : "active") },
          w.status === "active" ? "Pause" : "Resume",
        ),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "aria-expanded": "false",
            onclick: (e) => {
              const open = panel.hidden;
              panel.hidden = !open;
              e.currentTarget.setAttribute("aria-expanded", String(open));
              if (open) {
                clear(panel).append(editForm(w));
                panel.querySelector("input").focus();
              } else clear(panel);
            },
          },
          "Edit",
        ),
        h("button", { type: "button", class: "secondary", onclick: () => rotate(w) }, "Rotate secret"),
        h("button", { type: "button", class: "danger", onclick: () => remove(w) }, "Delete"),
      ),
      panel,
    );

    function editForm(current) {
      const picker = eventPicker(current.events);
      const form = h(
        "form",
        { "aria-label": `Edit webhook ${current.url}` },
        field("Endpoint URL", "url", { type: "url", value: current.url, attrs: { required: true, inputmode: "url" } }),
        field("Description", "description", { value: current.description || "", attrs: { maxlength: 1000 } }),
        picker.el,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "secondary", onclick: () => onChange(current) }, "Cancel"),
          h("button", { type: "submit" }, "Save"),
        ),
      );
      onSubmit(form, async (v) => {
        const body = {};
        if (v.url.trim() !== current.url) body.url = v.url.trim();
        if ((v.description.trim() || null) !== current.description) body.description = v.description.trim() || null;
        const events = picker.read();
        if (JSON.stringify(events) !== JSON.stringify(current.events)) body.events = events;
        if (Object.keys(body).length === 0) {
          onChange(current);
          return;
        }
        const updated = await patch(`webhooks/${encodeURIComponent(current.id)}`, body);
        toast("Webhook saved", "ok");
        onChange(updated);
      });
      return form;
    }

    async function setStatus(current, status) {
      try {
        onChange(await patch(`webhooks/${encodeURIComponent(current.id)}`, { status }));
        toast(status === "paused" ? "Paused: deliveries wait until you resume" : "Resumed: waiting deliveries go out now", "ok");
      } catch (err) {
        toast(`Could not ${status === "paused" ? "pause" : "resume"}: ${err.message}`, "error");
      }
    }

    async function sendTest(current) {
      try {
        const delivery = await post(`webhooks/${encodeURIComponent(current.id)}/test`);
        toast(current.status === "active" ? "Test delivery queued: see the delivery log" : `Test queued: it waits while the webhook is ${current.status}`, "ok");
        if (detail) detail.added(delivery);
      } catch (err) {
        toast(`Could not send a test: ${err.message}`, "error");
      }
    }

    async function rotate(current) {
      const ok = await confirmDialog(
        `Rotate the signing secret of ${current.url}? The old secret stops working at once: update your receiver with the new one.`,
        "Rotate secret",
      );
      if (!ok) return;
      try {
        const rotated = await post(`webhooks/${encodeURIComponent(current.id)}/rotate-secret`);
        reveal(rotated, `New signing secret for ${rotated.url}`);
      } catch (err) {
        toast(`Could not rotate the secret: ${err.message}`, "error");
      }
    }

    async function remove(current) {
      const ok = await confirmDialog(`Delete the webhook to ${current.url}? No more events are sent to it and its delivery log is deleted.`, "Delete webhook");
      if (!ok) return;
      try {
        await del(`webhooks/${encodeURIComponent(current.id)}`);
      } catch (err) {
        toast(`Could not delete: ${err.message}`, "error");
        return;
      }
      toast("Webhook deleted", "ok");
      onDelete(current);
    }

    return li;
  }

  if (ctx.params[0]) await renderDetail(ctx.params[0]);
  else await renderList();

  // -- #/webhooks ------------------------------------------------------------------------------
  async function renderList() {
    root.append(
      h("h1", {}, "Webhooks"),
      h(
        "p",
        { class: "page-intro" },
        "Chronary POSTs a signed JSON message to each endpoint when something it subscribes to happens, ",
        "and retries for up to a day when the receiver fails.",
      ),
      revealed,
    );
    const list = h("ul", { class: "items", "aria-label": "Webhook endpoints" });
    const listBox = h("div", {}, list);
    const cards = new Map();

    const picker = eventPicker([]);
    const form = h(
      "form",
      { "aria-label": "Add a webhook" },
      h(
        "div",
        { class: "form-grid" },
        h("div", { class: "wide" }, field("Endpoint URL", "url", { type: "url", attrs: { required: true, placeholder: "https://example.com/hooks/chronary", inputmode: "url", autocomplete: "off" } })),
        field("Description", "description", { attrs: { maxlength: 1000, placeholder: "What receives it" } }),
        field("Agents", "agent_id", { tag: "select", options: [["", "All agents"], ...agents.map((a) => [a.id, `Only ${a.name}`])] }),
      ),
      picker.el,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Add webhook")),
    );
    onSubmit(form, async (v) => {
      const body = { url: v.url.trim(), events: picker.read() };
      if (v.description.trim()) body.description = v.description.trim();
      if (v.agent_id) body.agent_id = v.agent_id;
      const created = await post("webhooks", body);
      form.reset();
      picker.el.querySelectorAll("input").forEach((b) => (b.disabled = false));
      upsert(created, true);
      reveal(created, `Signing secret for ${created.url}`);
      toast("Webhook added", "ok");
    });
    root.append(section("Endpoints", listBox), section("Add a webhook", form));

    const handlers = {
      onChange: (w) => upsert(w),
      onDelete: (w) => {
        cards.get(w.id)?.remove();
        cards.delete(w.id);
        showEmpty();
      },
    };
    function upsert(w, first = false) {
      const li = webhookCard(w, handlers);
      const known = cards.get(w.id);
      if (known) known.replaceWith(li);
      else if (first) list.prepend(li);
      else list.append(li);
      cards.set(w.id, li);
      showEmpty();
    }
    function showEmpty() {
      listBox.querySelector(".empty")?.remove();
      if (cards.size === 0) listBox.append(empty("No webhooks yet. Add an endpoint below to get events as they happen."));
    }
    try {
      (await all("webhooks")).forEach((w) => upsert(w));
    } catch (err) {
      listBox.append(h("p", { class: "alert", role: "alert" }, `The webhooks could not be listed: ${err.message}`));
      return;
    }
    showEmpty();
  }

  // -- #/webhooks/<id>: the delivery log -------------------------------------------------------
  async function renderDetail(id) {
    const back = h("p", {}, h("a", { href: "#/webhooks" }, "← All webhooks"));
    let webhook;
    try {
      webhook = await get(`webhooks/${encodeURIComponent(id)}`);
    } catch (err) {
      root.append(back, h("h1", {}, "Webhook"), h("p", { class: "alert", role: "alert" }, err.status === 404 ? `There is no webhook ${id}.` : err.message));
      return;
    }
    const cardBox = h("ul", { class: "items single", "aria-label": "Webhook" });
    const log = h("ul", { class: "items", "aria-label": "Deliveries" });
    const logBox = h("div", { "aria-live": "polite" }, log);
    const rows = new Map(); // delivery id → {d, li, body, panel}
    let filter = "";

    const detail = {
      added: (delivery) => {
        upsertDelivery(delivery, true);
        schedule(true);
      },
    };
    const handlers = {
      detail,
      onChange: (w) => {
        webhook = w;
        clear(cardBox).append(webhookCard(w, handlers));
        schedule(true);
      },
      onDelete: () => ctx.navigate("#/webhooks"),
    };
    cardBox.append(webhookCard(webhook, handlers));

    const statusField = field("Show", "status", {
      tag: "select",
      options: [["", "All deliveries"], ["pending", "Pending"], ["retrying", "Retrying"], ["succeeded", "Succeeded"], ["failed", "Failed"]],
    });
    statusField.querySelector("select").addEventListener("change", async (e) => {
      filter = e.target.value;
      rows.clear();
      clear(log);
      await load();
    });

    root.append(
      back,
      h("h1", {}, "Webhook deliveries"),
      revealed,
      cardBox,
      section("Delivery log", h("div", { class: "scope-picker" }, statusField), logBox),
    );

    function upsertDelivery(d, first = false) {
      const known = rows.get(d.id);
      if (filter && d.status !== filter) {
        if (known) {
          known.li.remove();
          rows.delete(d.id);
        }
        showEmpty();
        return;
      }
      if (known) {
        if (JSON.stringify(known.d) === JSON.stringify(d)) return;
        known.d = d;
        const body = deliveryBody(d);
        known.body.replaceWith(body);
        known.body = body;
        if (!known.panel.hidden) loadAttempts(d.id);
      } else {
        const body = deliveryBody(d);
        const panel = h("div", { class: "panel delivery-detail", hidden: true });
        const li = h("li", { class: "item delivery", dataset: { id: d.id }, "aria-label": `Delivery ${d.event_type} ${d.id}` }, body, panel);
        rows.set(d.id, { d, li, body, panel });
        if (first) log.prepend(li);
        else log.append(li);
      }
      showEmpty();
    }

    function showEmpty() {
      logBox.querySelector(".empty")?.remove();
      if (rows.size === 0) {
        logBox.append(
          empty(
            filter
              ? `No ${filter} deliveries.`
              : "No deliveries yet. They appear here when a subscribed event happens; “Send a test” sends one now.",
          ),
        );
      }
    }

    function deliveryBody(d) {
      const open = rows.get(d.id) && !rows.get(d.id).panel.hidden;
      const response = d.last_status_code ? `HTTP ${d.last_status_code}${d.last_duration_ms != null ? ` in ${d.last_duration_ms} ms` : ""}` : d.last_attempt_at ? "No response" : "Not tried yet";
      return h(
        "div",
        { class: "summary" },
        h(
          "div",
          { class: "item-head" },
          h("h3", {}, h("code", {}, d.event_type)),
          h("div", { class: "badges" }, h("span", { class: `badge ${DELIVERY[d.status] || ""}` }, d.status)),
        ),
        d.last_error ? h("p", { class: "alert" }, `Last attempt failed: ${d.last_error}`) : null,
        meta([
          ["Created", when(d.created_at)],
          ["Attempts", h("span", { class: "attempt-count" }, String(d.attempts))],
          ["Last response", response],
          d.next_attempt_at && d.status !== "succeeded" && d.status !== "failed" ? ["Next attempt", when(d.next_attempt_at)] : null,
          ["Delivery", h("span", { class: "mono" }, d.id)],
        ]),
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              "aria-expanded": String(Boolean(open)),
              "aria-label": `Attempts and payload of delivery ${d.id}`,
              onclick: (e) => toggleAttempts(d.id, e.currentTarget),
            },
            "Attempts and payload",
          ),
          h("button", { type: "button", class: "secondary", "aria-label": `Redeliver ${d.id}`, onclick: () => redeliver(d) }, "Redeliver"),
        ),
      );
    }

    function toggleAttempts(deliveryId, button) {
      const row = rows.get(deliveryId);
      const open = row.panel.hidden;
      row.panel.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) loadAttempts(deliveryId);
      else clear(row.panel);
    }

    async function loadAttempts(deliveryId) {
      const row = rows.get(deliveryId);
      if (!row) return;
      if (!row.panel.firstChild) row.panel.append(h("p", { class: "loading" }, "Loading…"));
      let full;
      try {
        full = await get(`webhook-deliveries/${encodeURIComponent(deliveryId)}`);
      } catch (err) {
        clear(row.panel).append(h("p", { class: "alert", role: "alert" }, `Could not load the attempts: ${err.message}`));
        return;
      }
      if (row.panel.hidden) return;
      clear(row.panel).append(
        h("h4", {}, "Attempts"),
        full.attempt_log.length
          ? h(
              "ol",
              { class: "attempts", "aria-label": `Attempts of delivery ${deliveryId}` },
              full.attempt_log.map((a) =>
                h(
                  "li",
                  { class: `attempt ${a.outcome}` },
                  h(
                    "div",
                    {},
                    h("strong", {}, `#${a.number} ${a.outcome.replace("_", " ")}`),
                    " · ",
                    a.status_code ? `HTTP ${a.status_code}` : "no HTTP answer",
                    a.duration_ms != null ? ` · ${a.duration_ms} ms` : "",
                    " · ",
                    when(a.started_at),
                  ),
                  a.error ? h("div", { class: "muted" }, a.error) : null,
                  a.response_body ? h("details", {}, h("summary", {}, "Response body"), h("pre", { class: "payload" }, a.response_body)) : null,
                ),
              ),
            )
          : h("p", { class: "muted" }, "No attempt yet."),
        h("details", {}, h("summary", {}, "Payload"), h("pre", { class: "payload delivery-payload" }, JSON.stringify(full.payload, null, 2))),
      );
    }

    async function redeliver(d) {
      try {
        const again = await post(`webhook-deliveries/${encodeURIComponent(d.id)}/redeliver`);
        toast("Redelivery queued", "ok");
        if (again && again.id) upsertDelivery(again);
        schedule(true);
      } catch (err) {
        toast(`Could not redeliver: ${err.message}`, "error"); // 409 while an attempt is in flight
      }
    }

    let quickUntil = 0;
    let polling = false; // a load is under way: it schedules the next one itself
    function schedule(soon = false) {
      if (soon) {
        quickUntil = Date.now() + 30000;
        clearTimeout(timer); // a slow round may be pending: look again soon instead
        timer = null;
      }
      if (!alive || timer || polling) return;
      const busy = [...rows.values()].some(({ d }) => d.status === "pending" || d.status === "retrying");
      // quick while something is on its way; slowly otherwise, so new deliveries show up too
      timer = setTimeout(tick, busy || Date.now() < quickUntil ? POLL_MS : 10000);
    }

    async function tick() {
      timer = null;
      if (!alive) return;
      polling = true;
      try {
        await load(true);
      } finally {
        polling = false;
      }
      schedule();
    }

    async function load(quiet = false) {
      let page;
      try {
        page = await get(`webhooks/${encodeURIComponent(id)}/deliveries`, { status: filter || null, limit: 100 });
      } catch (err) {
        if (!quiet) clear(logBox).append(h("p", { class: "alert", role: "alert" }, `The deliveries could not be listed: ${err.message}`));
        return;
      }
      if (!alive) return;
      // newest first: new ones go on top, in order
      const fresh = page.data.filter((d) => !rows.has(d.id));
      fresh.reverse().forEach((d) => upsertDelivery(d, true));
      page.data.filter((d) => rows.has(d.id)).forEach((d) => upsertDelivery(d));
      showEmpty();
    }

    await load();
    schedule();
  }
}
