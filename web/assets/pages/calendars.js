// Calendars & feeds (#/calendars): every calendar the key may see, grouped by owner; creating,
// editing and deleting one; and its iCal feed: the URL (ical_url, already on the server's public
// URL) with a copy button, a webcal:// link, a QR code to subscribe from a phone, and rotation;
// and its feeds per device (feed tokens: a URL each, full, busy-only or a window, revoked alone).
// The API has no colour field: the colour is kept in the calendar's metadata as `color`.
import { all, del, patch, post } from "/assets/api.js";
import { confirmDialog, copyButton, empty, field, h, onSubmit, toast, when } from "/assets/ui.js";
import qrcode from "/vendor/qrcode/qrcode.mjs";
import { agentLabel, browserZone, ensureCss, pageView, failure, loadAgents, tzField } from "/assets/pages/people-util.js";

const AGENT_STATUSES = [
  ["idle", "Idle"],
  ["working", "Working"],
  ["waiting", "Waiting"],
  ["error", "Error"],
];
const SVG = "http://www.w3.org/2000/svg";
const DEFAULT_COLOR = "#1d4ed8";

// The feed URL as a QR code: one SVG path of dark modules, with a quiet zone of 4 modules.
export function qrSvg(text, label) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const size = n + 8;
  let d = "";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) d += `M${c + 4} ${r + 4}h1v1h-1z`;
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#ffffff");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000000");
  svg.append(bg, path);
  return svg;
}

function webcal(url) {
  return url.replace(/^https?:\/\//, "webcal://");
}

function parseReminders(text) {
  const t = (text || "").trim();
  if (!t) return null;
  return t.split(/[\s,;]+/).filter(Boolean).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

function reminderText(list) {
  return list && list.length ? list.join(", ") : "";
}

function calendarFields(cal) {
  return [
    field("Name", "name", { value: cal ? cal.name : "", attrs: { required: true, maxlength: 255, autocomplete: "off" } }),
    tzField("Timezone", "timezone", cal ? cal.timezone : browserZone(), "IANA name, e.g. Europe/Berlin"),
    field("Colour", "color", { type: "color", value: (cal && cal.metadata && cal.metadata.color) || DEFAULT_COLOR }),
    field(
      "Default reminders (minutes before)",
      "default_reminders",
      { value: cal ? reminderText(cal.default_reminders) : "", attrs: { inputmode: "numeric", autocomplete: "off", placeholder: "e.g. 10, 60" } },
      "Up to 5, each 1–40320, separated by commas; empty for none",
    ),
    field("Agent status", "agent_status", { tag: "select", options: AGENT_STATUSES, value: cal ? cal.agent_status : "idle" }, "What the owning agent is doing now"),
  ];
}

export default async function render(main, ctx) {
  ensureCss();
  // everything goes in a view of its own: if another page opens while this one still loads,
  // the view is detached and late results land nowhere
  const root = pageView(main);
  root.append(h("h1", {}, "Calendars & feeds"));
  const body = h("div");
  root.append(body);
  let agents;
  try {
    agents = await loadAgents();
  } catch (err) {
    body.append(failure(`The agents could not be loaded: ${err.message}`));
    return;
  }
  await draw(body, ctx, agents);
}

async function draw(body, ctx, agents) {
  let calendars;
  try {
    calendars = ctx.isOrg ? await all("/v1/calendars", { include: "all" }) : await all(`/v1/agents/${encodeURIComponent(ctx.agentId)}/calendars`);
  } catch (err) {
    body.replaceChildren(failure(`The calendars could not be loaded: ${err.message}`));
    return;
  }
  const redraw = () => draw(body, ctx, agents);
  const owners = ctx.isOrg ? [["", "Org-level (no agent)"], ...agents.map((a) => [a.id, a.name])] : [[ctx.agentId, agentLabel(agents, ctx.agentId)]];
  const groups = new Map();
  for (const cal of calendars) {
    const key = cal.agent_id || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(cal);
  }
  const out = [];
  if (!ctx.isOrg) out.push(h("p", { class: "muted" }, "Signed in with an agent key: you see only your agent's calendars."));
  if (calendars.length === 0) {
    out.push(
      empty(
        "No calendars yet — create the first one below; each gets an iCal feed URL you can subscribe to.",
        h("button", { type: "button", onclick: () => document.querySelector("#new-calendar input")?.focus() }, "Create a calendar"),
      ),
    );
  }
  const order = [...groups.keys()].sort((a, b) => (a === "" ? -1 : b === "" ? 1 : agentLabel(agents, a).localeCompare(agentLabel(agents, b))));
  for (const key of order) {
    const title = key ? `${agentLabel(agents, key)}` : "Org-level calendars";
    const list = groups.get(key).sort((a, b) => a.name.localeCompare(b.name));
    out.push(
      h(
        "section",
        { class: "owner", "aria-label": title },
        h("h2", {}, title, key ? h("span", { class: "muted small" }, " · agent") : null),
        h("div", { class: "cal-list" }, list.map((cal) => calendarCard(cal, agents, redraw))),
      ),
    );
  }
  const without = agents.filter((a) => (ctx.isOrg || a.id === ctx.agentId) && !groups.has(a.id));
  if (calendars.length && without.length) {
    out.push(h("p", { class: "muted" }, `No calendar yet: ${without.map((a) => a.name).join(", ")} — create one below (an agent needs one to be booked).`));
  }
  out.push(createForm(owners, ctx, redraw));
  body.replaceChildren(...out);
}

function calendarCard(cal, agents, redraw) {
  const card = h("article", { class: "card calendar", "aria-labelledby": `cal-${cal.id}` });
  const color = (cal.metadata && cal.metadata.color) || DEFAULT_COLOR;
  const showView = () => {
    const urlInput = h("input", { type: "text", readonly: true, value: cal.ical_url, id: `url-${cal.id}`, class: "url", spellcheck: "false" });
    const copy = copyButton(cal.ical_url, "Copy feed URL");
    copy.addEventListener("click", () => toast("Feed URL copied", "ok"));
    copy.setAttribute("aria-describedby", `cal-${cal.id}`);
    card.replaceChildren(
      h(
        "header",
        { class: "row cal-head" },
        h("span", { class: "swatch", style: `background:${/^#[0-9a-f]{6}$/i.test(color) ? color : DEFAULT_COLOR}`, "aria-hidden": "true" }),
        h("h3", { id: `cal-${cal.id}` }, cal.name),
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Owner"),
        h("dd", {}, cal.agent_id ? agentLabel(agents, cal.agent_id) : "Org-level"),
        h("dt", {}, "Timezone"),
        h("dd", {}, cal.timezone),
        h("dt", {}, "Reminders"),
        h("dd", {}, cal.default_reminders && cal.default_reminders.length ? `${cal.default_reminders.join(", ")} min before` : "None"),
        h("dt", {}, "Agent status"),
        h("dd", {}, cal.agent_status),
        h("dt", {}, "ID"),
        h("dd", { class: "id" }, cal.id),
      ),
      h(
        "div",
        { class: "feed" },
        h("h4", {}, "iCal feed"),
        h("p", { class: "help" }, "Anyone with this URL can read the calendar — share it like a password. Rotate it if it leaks."),
        h("label", { for: urlInput.id }, `Feed URL of ${cal.name}`),
        h("div", { class: "url-row" }, urlInput, copy),
        h(
          "div",
          { class: "qr-row" },
          qrSvg(cal.ical_url, `QR code for the feed URL of ${cal.name}`),
          h(
            "div",
            {},
            h("p", { class: "help" }, "Scan with a phone's camera to open the feed, or subscribe in a calendar app on this device:"),
            h("p", {}, h("a", { href: cal.webcal_url || webcal(cal.ical_url), class: "button-link" }, `Subscribe to ${cal.name} (webcal://)`)),
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-describedby": `cal-${cal.id}`,
                onclick: async () => {
                  const ok = await confirmDialog(
                    `Rotate the feed URL of ${cal.name}? The old URL stops working at once: every app subscribed with it must subscribe again with the new URL.`,
                    "Rotate feed URL",
                  );
                  if (!ok) return;
                  try {
                    Object.assign(cal, await post(`/v1/calendars/${encodeURIComponent(cal.id)}/rotate-feed`));
                    toast("New feed URL issued; the old one no longer works", "ok");
                    showView();
                    card.querySelector("input.url")?.focus();
                  } catch (err) {
                    toast(`The feed URL could not be rotated: ${err.message}`, "error");
                  }
                },
              },
              "Rotate feed URL",
            ),
          ),
        ),
        deviceFeeds(cal),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: showEdit, "aria-label": `Edit ${cal.name}` }, "Edit"),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            "aria-label": `Delete ${cal.name}`,
            onclick: async () => {
              const ok = await confirmDialog(
                `Delete calendar ${cal.name} and all its events? Its feed URL will stop working. This cannot be undone.`,
                "Delete calendar",
              );
              if (!ok) return;
              try {
                await del(`/v1/calendars/${encodeURIComponent(cal.id)}`);
                toast(`Calendar ${cal.name} deleted`, "ok");
                redraw();
              } catch (err) {
                toast(`The calendar could not be deleted: ${err.message}`, "error");
              }
            },
          },
          "Delete",
        ),
      ),
    );
  };
  function showEdit() {
    const form = h(
      "form",
      { novalidate: true, "aria-labelledby": `cal-${cal.id}` },
      h("h3", { id: `cal-${cal.id}` }, `Edit ${cal.name}`),
      calendarFields(cal),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: showView }, "Cancel"),
        h("button", { type: "submit" }, "Save calendar"),
      ),
    );
    onSubmit(form, async (v) => {
      const changes = {};
      if (v.name !== cal.name) changes.name = v.name;
      if (v.timezone !== cal.timezone) changes.timezone = v.timezone;
      if (v.agent_status !== cal.agent_status) changes.agent_status = v.agent_status;
      const reminders = parseReminders(v.default_reminders);
      if (JSON.stringify(reminders || []) !== JSON.stringify(cal.default_reminders || [])) changes.default_reminders = reminders;
      if (v.color !== ((cal.metadata && cal.metadata.color) || DEFAULT_COLOR)) changes.metadata = { ...(cal.metadata || {}), color: v.color };
      if (Object.keys(changes).length === 0) {
        showView();
        return;
      }
      Object.assign(cal, await patch(`/v1/calendars/${encodeURIComponent(cal.id)}`, changes));
      toast("Calendar saved", "ok");
      redraw();
    });
    card.replaceChildren(form);
    form.querySelector("input")?.focus();
  }
  showView();
  return card;
}

const SCOPES = [
  ["full", "Full details"],
  ["busy", "Busy only (no titles or details)"],
  ["window", "A window of days (full details)"],
  ["window-busy", "A window of days, busy only"],
];

function scopeText(scope) {
  if (scope.kind === "full") return "Full details";
  if (scope.kind === "busy") return "Busy only";
  return `${scope.past_days} days back to ${scope.future_days} days ahead${scope.busy ? ", busy only" : ""}`;
}

// Feeds per device: a URL for each phone, laptop or person, revoked alone. Loaded when opened
// (one request per calendar only for the ones looked at); a new URL is shown once, as created.
function deviceFeeds(cal) {
  const list = h("ul", { class: "tokens" });
  const created = h("div", { class: "created", "aria-live": "polite" });
  const box = h(
    "details",
    { class: "device-feeds" },
    h("summary", {}, `Feeds per device for ${cal.name}`),
    h("p", { class: "help" }, "Give each device or person its own URL: you can see when each was last read, and revoke one without breaking the others."),
    list,
    created,
  );
  const base = `/v1/calendars/${encodeURIComponent(cal.id)}/feed-tokens`;
  async function load() {
    let tokens;
    try {
      tokens = await all(base);
    } catch (err) {
      list.replaceChildren(h("li", { class: "alert" }, `The feed tokens could not be loaded: ${err.message}`));
      return;
    }
    if (!tokens.length) {
      list.replaceChildren(h("li", { class: "muted" }, "No device feeds yet."));
      return;
    }
    list.replaceChildren(
      ...tokens.map((t) =>
        h(
          "li",
          { class: "token" },
          h("strong", {}, t.label),
          ` · ${scopeText(t.scope)} · `,
          t.last_fetched_at ? `last read ${when(t.last_fetched_at)}${t.last_user_agent ? ` by ${t.last_user_agent}` : ""}` : "never read",
          " ",
          h(
            "button",
            {
              type: "button",
              class: "danger small",
              "aria-label": `Revoke the feed of ${t.label}`,
              onclick: async () => {
                const ok = await confirmDialog(`Revoke the feed URL of ${t.label}? That URL stops working at once; the others keep working.`, "Revoke");
                if (!ok) return;
                try {
                  await del(`${base}/${encodeURIComponent(t.id)}`);
                  toast(`Feed of ${t.label} revoked`, "ok");
                  created.replaceChildren();
                  load();
                } catch (err) {
                  toast(`The feed could not be revoked: ${err.message}`, "error");
                }
              },
            },
            "Revoke",
          ),
        ),
      ),
    );
  }
  const form = h(
    "form",
    { novalidate: true, "aria-label": `New device feed for ${cal.name}` },
    h(
      "div",
      { class: "form-grid" },
      field("Device or person", "label", { attrs: { required: true, maxlength: 255, autocomplete: "off", placeholder: "e.g. Ada's phone" } }),
      field("Shows", "scope", { tag: "select", options: SCOPES, value: "full" }),
      field("Days back (window)", "past_days", { type: "number", value: "30", attrs: { min: 0, max: 3650 } }),
      field("Days ahead (window)", "future_days", { type: "number", value: "365", attrs: { min: 0, max: 3650 } }),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, "Create device feed")),
  );
  onSubmit(form, async (v) => {
    const scope = v.scope.startsWith("window") ? { kind: "window", past_days: v.past_days, future_days: v.future_days, busy: v.scope === "window-busy" } : { kind: v.scope };
    const tok = await post(base, { label: v.label, scope });
    const input = h("input", { type: "text", readonly: true, value: tok.ical_url, id: `url-${tok.id}`, class: "url", spellcheck: "false" });
    created.replaceChildren(
      h("p", {}, h("strong", {}, `Feed URL for ${tok.label} — shown only now; copy it or subscribe on that device.`)),
      h("label", { for: input.id }, `Feed URL for ${tok.label}`),
      h("div", { class: "url-row" }, input, copyButton(tok.ical_url, `Copy the feed URL for ${tok.label}`)),
      h("p", {}, h("a", { href: tok.webcal_url, class: "button-link" }, `Subscribe (webcal://) as ${tok.label}`)),
    );
    form.reset();
    toast(`Feed for ${tok.label} created`, "ok");
    await load();
  });
  box.append(form);
  box.addEventListener("toggle", () => {
    if (box.open) load();
  });
  return box;
}

function createForm(owners, ctx, redraw) {
  const form = h(
    "form",
    { class: "card", id: "new-calendar", "aria-labelledby": "new-calendar-title", novalidate: true },
    h("h2", { id: "new-calendar-title" }, "New calendar"),
    h(
      "div",
      { class: "form-grid" },
      ctx.isOrg
        ? field("Owner", "agent_id", { tag: "select", options: owners, value: owners.length > 1 ? owners[1][0] : "" }, "An agent's calendar counts for its availability")
        : null,
      calendarFields(null),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create calendar")),
  );
  onSubmit(form, async (v) => {
    const body = { name: v.name, timezone: v.timezone, agent_status: v.agent_status, metadata: { color: v.color } };
    const reminders = parseReminders(v.default_reminders);
    if (reminders) body.default_reminders = reminders;
    const owner = ctx.isOrg ? v.agent_id : ctx.agentId;
    const cal = owner ? await post(`/v1/agents/${encodeURIComponent(owner)}/calendars`, body) : await post("/v1/calendars", body);
    toast(`Calendar ${cal.name} created`, "ok");
    await redraw();
    document.getElementById(`cal-${cal.id}`)?.scrollIntoView({ block: "center" });
  });
  return form;
}
