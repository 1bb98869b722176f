// Agents: the list (#/agents), creating one (org keys), and one agent (#/agents/<id>): what it is
// doing now and next (GET /v1/agents/{id}/context), editing it (PATCH), its calendars, deleting it.
import { ApiError, all, del, get, patch, post } from "/assets/api.js";
import { confirmDialog, empty, field, h, onSubmit, section, toast, when } from "/assets/ui.js";
import { badge, browserZone, ensureCss, pageView, failure, range, tzField } from "/assets/pages/people-util.js";

const TYPES = [
  ["ai", "AI agent"],
  ["human", "Human"],
  ["resource", "Resource (room, device…)"],
];
const STATUSES = [
  ["active", "Active"],
  ["paused", "Paused"],
  ["decommissioned", "Decommissioned"],
];

export default async function render(main, ctx) {
  ensureCss();
  // everything goes in a view of its own: if another page opens while this one still loads,
  // the view is detached and late results land nowhere
  const root = pageView(main);
  if (ctx.params[0]) return renderOne(root, ctx, ctx.params[0]);
  return renderList(root, ctx);
}

function createForm(ctx) {
  const form = h(
    "form",
    { class: "card", id: "new-agent", "aria-labelledby": "new-agent-title", novalidate: true },
    h("h2", { id: "new-agent-title" }, "New agent"),
    h(
      "div",
      { class: "form-grid" },
      field("Name", "name", { attrs: { required: true, maxlength: 255, autocomplete: "off" } }),
      field("Type", "type", { tag: "select", options: TYPES, value: "ai" }),
      tzField("Timezone", "timezone", browserZone(), "IANA name, e.g. Europe/Berlin"),
      field("Email (optional)", "email", { type: "email", attrs: { autocomplete: "off" } }),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create agent")),
  );
  onSubmit(form, async (v) => {
    const body = { name: v.name, type: v.type, timezone: v.timezone };
    if (v.email) body.email = v.email;
    const agent = await post("/v1/agents", body);
    toast(`Agent ${agent.name} created`, "ok");
    ctx.navigate(`#/agents/${encodeURIComponent(agent.id)}`);
  });
  return form;
}

async function renderList(root, ctx) {
  root.append(h("h1", {}, "Agents"));
  let agents;
  try {
    agents = await all("/v1/agents");
  } catch (err) {
    root.append(failure(`The agents could not be loaded: ${err.message}`));
    return;
  }
  agents.sort((a, b) => a.name.localeCompare(b.name));
  if (!ctx.isOrg) {
    root.append(h("p", { class: "muted" }, "Signed in with an agent key: you see only your own agent."));
  }
  if (agents.length === 0) {
    root.append(
      empty(
        ctx.isOrg ? "No agents yet — create the first one below." : "This key's agent was not found.",
        ctx.isOrg ? h("button", { type: "button", onclick: () => document.querySelector("#new-agent input")?.focus() }, "Create the first agent") : null,
      ),
    );
  } else {
    root.append(
      h(
        "div",
        { class: "card" },
        h(
          "table",
          { class: "agents" },
          h("caption", { class: "sr-only" }, "Agents"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Name"),
              h("th", { scope: "col", class: "hide-phone" }, "Type"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Timezone"),
              h("th", { scope: "col", class: "hide-phone" }, "Email"),
            ),
          ),
          h(
            "tbody",
            {},
            agents.map((a) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#/agents/${encodeURIComponent(a.id)}` }, a.name), h("div", { class: "muted small id" }, a.id)),
                h("td", { class: "hide-phone" }, a.type),
                h("td", {}, badge(a.status)),
                h("td", { class: "wrap" }, a.timezone),
                h("td", { class: "hide-phone wrap" }, a.email || "—"),
              ),
            ),
          ),
        ),
      ),
    );
  }
  if (ctx.isOrg) root.append(createForm(ctx));
}

function eventLine(ev, tz) {
  return h(
    "li",
    {},
    h("strong", {}, ev.title),
    " ",
    ev.status !== "confirmed" ? badge(ev.status) : null,
    h("div", { class: "muted" }, ev.all_day ? `${ev.start_date} (all day)` : range(ev.start_time, ev.end_time, tz)),
  );
}

async function contextCard(agent) {
  const box = h("section", { class: "card", "aria-labelledby": "ctx-title" }, h("h2", { id: "ctx-title" }, "Now and next"));
  const body = h("div", { "aria-live": "polite" });
  box.append(body);
  async function load() {
    let c;
    try {
      c = await get(`/v1/agents/${encodeURIComponent(agent.id)}/context`, { upcoming: 5, recent: 3 });
    } catch (err) {
      body.replaceChildren(failure(`The agent's context could not be loaded: ${err.message}`));
      return;
    }
    const tz = agent.timezone;
    body.replaceChildren(
      h(
        "p",
        {},
        "Status: ",
        badge(c.agent.status),
        " · working state: ",
        badge(c.agent_status),
        h("span", { class: "muted" }, ` · as of ${when(c.now, tz)} (${tz})`),
      ),
      h("h3", {}, "Now"),
      c.current_event ? h("ul", { class: "plain" }, eventLine(c.current_event, tz)) : h("p", { class: "muted" }, "Nothing on now — the agent is free."),
      h("h3", {}, "Next"),
      c.upcoming.length ? h("ul", { class: "plain" }, c.upcoming.map((e) => eventLine(e, tz))) : h("p", { class: "muted" }, "Nothing coming up. Add events on the Calendar page."),
      h("h3", {}, "Recently"),
      c.recent.length ? h("ul", { class: "plain" }, c.recent.map((e) => eventLine(e, tz))) : h("p", { class: "muted" }, "No past events."),
    );
  }
  await load();
  return { box, load };
}

function editForm(agent, ctx, onSaved) {
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit-title", novalidate: true },
    h("h2", { id: "edit-title" }, "Edit"),
    h(
      "div",
      { class: "form-grid" },
      field("Name", "name", { value: agent.name, attrs: { required: true, maxlength: 255, autocomplete: "off" } }),
      field("Status", "status", { tag: "select", options: STATUSES, value: agent.status }),
      field("Type", "type", { tag: "select", options: TYPES, value: agent.type }),
      tzField("Timezone", "timezone", agent.timezone, "IANA name, e.g. Europe/Berlin"),
      field("Email", "email", { type: "email", value: agent.email || "", attrs: { autocomplete: "off" } }, "Leave empty to remove it"),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save changes")),
  );
  onSubmit(form, async (v) => {
    const changes = {};
    for (const k of ["name", "status", "type", "timezone"]) if (v[k] !== agent[k]) changes[k] = v[k];
    const email = v.email ? v.email : null;
    if (email !== agent.email) changes.email = email;
    if (Object.keys(changes).length === 0) {
      toast("Nothing changed");
      return;
    }
    const saved = await patch(`/v1/agents/${encodeURIComponent(agent.id)}`, changes);
    Object.assign(agent, saved);
    toast("Agent saved", "ok");
    onSaved(saved);
  });
  return form;
}

async function renderOne(root, ctx, id) {
  root.append(h("p", {}, h("a", { href: "#/agents" }, "← All agents")));
  let agent;
  try {
    agent = await get(`/v1/agents/${encodeURIComponent(id)}`);
  } catch (err) {
    root.append(
      h("h1", {}, "Agent"),
      failure(err instanceof ApiError && err.status === 404 ? `There is no agent ${id} (or this key may not see it).` : `The agent could not be loaded: ${err.message}`),
    );
    return;
  }
  const title = h("h1", {}, agent.name);
  const summary = h("p", { class: "muted" });
  const showSummary = () => {
    title.textContent = agent.name;
    if (root.isConnected) document.title = `${agent.name} · Agents · Chronary`;
    summary.replaceChildren(badge(agent.status), ` ${agent.type} · ${agent.timezone}`, agent.email ? ` · ${agent.email}` : "", h("span", { class: "id" }, ` · ${agent.id}`));
  };
  showSummary();
  root.append(title, summary);
  const context = await contextCard(agent);
  if (!root.isConnected) return; // another page opened meanwhile
  const timer = setInterval(() => {
    if (!context.box.isConnected) clearInterval(timer);
    else if (document.visibilityState === "visible") context.load();
  }, 60_000);
  ctx.onCleanup(() => clearInterval(timer));
  root.append(
    h(
      "div",
      { class: "two-col" },
      context.box,
      editForm(agent, ctx, () => {
        showSummary();
        context.load();
      }),
    ),
  );

  const cals = section("Calendars");
  root.append(cals);
  try {
    const list = await all(`/v1/agents/${encodeURIComponent(agent.id)}/calendars`);
    cals.append(
      list.length
        ? h(
            "ul",
            { class: "plain" },
            list.map((c) => h("li", {}, h("strong", {}, c.name), h("span", { class: "muted" }, ` · ${c.timezone} · ${c.agent_status}`))),
          )
        : h("p", { class: "muted" }, "No calendars yet."),
      h("p", {}, h("a", { href: "#/calendars" }, list.length ? "Manage calendars and feeds" : "Create a calendar for this agent")),
    );
  } catch (err) {
    cals.append(failure(`The calendars could not be loaded: ${err.message}`));
  }

  if (ctx.isOrg) {
    root.append(
      section(
        "Delete",
        h("p", {}, "Deleting an agent deletes its calendars and all their events, and revokes its API keys."),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async () => {
              const ok = await confirmDialog(
                `Delete agent ${agent.name}? Its calendars, their events and its API keys go too. This cannot be undone.`,
                "Delete agent",
              );
              if (!ok) return;
              try {
                await del(`/v1/agents/${encodeURIComponent(agent.id)}`);
                toast(`Agent ${agent.name} deleted`, "ok");
                ctx.navigate("#/agents");
              } catch (err) {
                toast(`The agent could not be deleted: ${err.message}`, "error");
              }
            },
          },
          "Delete agent",
        ),
      ),
    );
  }
}
