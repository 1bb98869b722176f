// iCal subscriptions: one agent's calendars following .ics feeds. List (status, last sync, last
// error, events imported), subscribe, edit, pause/resume, "Sync now" (then the row is re-read a
// few times until the worker has synced), delete. Route: #/subscriptions/<agent_id>.
import { all, get, patch, post, del } from "/assets/api.js";
import { clear, confirmDialog, empty, field, h, onSubmit, section, toast, when } from "/assets/ui.js";

const POLL_MS = 1000;
const POLL_TRIES = 30;

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

const STATUS = { active: "ok", paused: "hold", error: "error" };

export default async function render(root, ctx) {
  useCss();
  let alive = true;
  const timers = new Set();
  ctx.onCleanup(() => {
    alive = false;
    timers.forEach(clearTimeout);
  });
  root.append(
    h("h1", {}, "iCal subscriptions"),
    h(
      "p",
      { class: "page-intro" },
      "A subscription copies the events of an .ics feed (a shared Google, Outlook or iCloud calendar link, a holiday calendar…) ",
      "into one of an agent's calendars and keeps them up to date. Imported events are read-only in Chronary.",
    ),
  );

  const agents = ctx.isOrg ? await all("agents") : [await get(`agents/${encodeURIComponent(ctx.agentId)}`)];
  if (agents.length === 0) {
    root.append(empty("There are no agents yet. Create an agent first, then subscribe one of its calendars to a feed.", h("a", { href: "#/agents" }, "Go to agents")));
    return;
  }
  const agent = agents.find((a) => a.id === ctx.params[0]) || agents[0];
  if (ctx.isOrg) {
    const picker = field("Agent", "agent", { tag: "select", value: agent.id, options: agents.map((a) => [a.id, `${a.name} (${a.id})`]) });
    picker.querySelector("select").addEventListener("change", (e) => ctx.navigate(`#/subscriptions/${encodeURIComponent(e.target.value)}`));
    root.append(h("div", { class: "scope-picker" }, picker));
  }

  const calendars = await all(`agents/${encodeURIComponent(agent.id)}/calendars`);
  const calName = new Map(calendars.map((c) => [c.id, c.name]));
  const items = new Map(); // id → {sub, li}
  const watching = new Set();
  const list = h("ul", { class: "items", "aria-label": `Subscriptions of ${agent.name}` });
  const listBox = h("div", {}, list);

  // -- create --------------------------------------------------------------------------------
  if (calendars.length === 0) {
    root.append(
      section(
        "Subscribe to a feed",
        empty(`${agent.name} has no calendar yet. Create a calendar first; a feed's events are copied into one.`, h("a", { href: "#/calendars" }, "Go to calendars")),
      ),
    );
  } else {
    const form = h(
      "form",
      { "aria-label": "Subscribe to a feed" },
      h(
        "div",
        { class: "form-grid" },
        h("div", { class: "wide" }, field("Feed URL", "url", { type: "url", attrs: { required: true, placeholder: "https://… or webcal://…", inputmode: "url", autocomplete: "off" } }, "The .ics address of the calendar (http, https or webcal).")),
        field("Into calendar", "calendar_id", { tag: "select", options: calendars.map((c) => [c.id, c.name]) }),
        field("Label", "label", { attrs: { maxlength: 255, placeholder: "e.g. Team holidays" } }),
        field("Refresh every (minutes)", "refresh_interval_minutes", { type: "number", value: "60", attrs: { min: 15, max: 1440, step: 1, required: true } }, "15 to 1440 minutes."),
      ),
      h(
        "details",
        { class: "more" },
        h("summary", {}, "The feed needs a username and password"),
        h(
          "div",
          { class: "form-grid" },
          field("Username", "username", { attrs: { autocomplete: "off" } }),
          field("Password", "password", { type: "password", attrs: { autocomplete: "new-password" } }, "Stored encrypted and never shown again."),
        ),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Subscribe")),
    );
    onSubmit(form, async (v) => {
      const body = { calendar_id: v.calendar_id, url: v.url.trim(), refresh_interval_minutes: v.refresh_interval_minutes ?? 60 };
      if (v.label.trim()) body.label = v.label.trim();
      if (v.username || v.password) {
        body.username = v.username;
        body.password = v.password;
      }
      const sub = await post(`agents/${encodeURIComponent(agent.id)}/ical-subscriptions`, body);
      form.reset();
      form.querySelector("details").open = false;
      toast("Subscribed: the first sync runs now", "ok");
      upsert(sub, true);
      watch(sub);
    });
    root.append(section("Subscribe to a feed", form));
  }
  root.append(section(`Subscriptions of ${agent.name}`, listBox));

  // -- list ----------------------------------------------------------------------------------
  function upsert(sub, first = false) {
    const li = renderItem(sub);
    const known = items.get(sub.id);
    if (known) known.li.replaceWith(li);
    else if (first) list.prepend(li);
    else list.append(li);
    items.set(sub.id, { sub, li });
    showEmpty();
  }

  function showEmpty() {
    listBox.querySelector(".empty")?.remove();
    if (items.size === 0) {
      listBox.append(empty(calendars.length ? "No subscriptions yet. Paste a feed's .ics URL in the form above to start one." : "No subscriptions yet."));
    }
  }

  function renderItem(sub) {
    const title = sub.label || sub.url;
    const syncing = watching.has(sub.id);
    const panel = h("div", { class: "panel", hidden: true });
    const li = h(
      "li",
      { class: "item", dataset: { id: sub.id }, "aria-label": `Subscription ${title}` },
      h(
        "div",
        { class: "item-head" },
        h("h3", {}, title),
        h(
          "div",
          { class: "badges" },
          h("span", { class: `badge ${STATUS[sub.status] || ""}` }, sub.status),
          sub.has_credentials ? h("span", { class: "badge" }, "password") : null,
        ),
      ),
      syncing ? h("p", { class: "syncing-note", role: "status" }, "Syncing…") : null,
      sub.last_error ? h("p", { class: "alert", role: "alert" }, `Last sync failed: ${sub.last_error}`) : null,
      meta([
        sub.label ? ["Feed", h("span", { class: "url" }, sub.url)] : null,
        ["Calendar", calName.get(sub.calendar_id) || sub.calendar_id],
        ["Events imported", h("span", { class: "event-count" }, String(sub.event_count))],
        ["Last synced", h("span", { class: "last-synced" }, sub.last_synced_at ? when(sub.last_synced_at) : "Not yet")],
        ["Refresh", `every ${sub.refresh_interval_minutes} min`],
      ]),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", disabled: syncing, onclick: () => syncNow(sub) }, "Sync now"),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => setStatus(sub, sub.status === "paused" ? "active" : "paused") },
          sub.status === "paused" ? "Resume" : "Pause",
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
                clear(panel).append(editForm(sub));
                panel.querySelector("input").focus();
              }
            },
          },
          "Edit",
        ),
        h("button", { type: "button", class: "danger", onclick: () => remove(sub) }, "Delete"),
      ),
      panel,
    );
    return li;
  }

  function editForm(sub) {
    const form = h(
      "form",
      { "aria-label": `Edit subscription ${sub.label || sub.url}` },
      h(
        "div",
        { class: "form-grid" },
        h("div", { class: "wide" }, field("Feed URL", "url", { type: "url", value: sub.url, attrs: { required: true, inputmode: "url" } })),
        field("Label", "label", { value: sub.label || "", attrs: { maxlength: 255 } }),
        field("Refresh every (minutes)", "refresh_interval_minutes", { type: "number", value: String(sub.refresh_interval_minutes), attrs: { min: 15, max: 1440, required: true } }),
        field("Username", "username", { attrs: { autocomplete: "off", placeholder: sub.has_credentials ? "unchanged" : "" } }),
        field("Password", "password", { type: "password", attrs: { autocomplete: "new-password", placeholder: sub.has_credentials ? "unchanged" : "" } }),
      ),
      sub.has_credentials
        ? h("label", { class: "check" }, h("input", { type: "checkbox", name: "forget_credentials" }), "Remove the saved username and password")
        : null,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => upsert(items.get(sub.id).sub) }, "Cancel"),
        h("button", { type: "submit" }, "Save"),
      ),
    );
    onSubmit(form, async (v) => {
      const body = {};
      if (v.url.trim() !== sub.url) body.url = v.url.trim();
      if ((v.label.trim() || null) !== sub.label) body.label = v.label.trim() || null;
      if (v.refresh_interval_minutes !== sub.refresh_interval_minutes) body.refresh_interval_minutes = v.refresh_interval_minutes;
      if (v.forget_credentials) {
        body.username = null;
        body.password = null;
      } else {
        if (v.username) body.username = v.username;
        if (v.password) body.password = v.password;
      }
      if (Object.keys(body).length === 0) {
        upsert(sub);
        return;
      }
      const updated = await patch(`ical-subscriptions/${encodeURIComponent(sub.id)}`, body);
      toast("Subscription saved", "ok");
      upsert(updated);
      if (body.url || "username" in body || "password" in body) watch(updated);
    });
    return form;
  }

  async function setStatus(sub, status) {
    try {
      upsert(await patch(`ical-subscriptions/${encodeURIComponent(sub.id)}`, { status }));
      toast(status === "paused" ? "Paused: the feed is not fetched until you resume" : "Resumed: syncing now", "ok");
      if (status === "active") watch(items.get(sub.id).sub);
    } catch (err) {
      toast(`Could not ${status === "paused" ? "pause" : "resume"}: ${err.message}`, "error");
    }
  }

  async function syncNow(sub) {
    try {
      await post(`ical-subscriptions/${encodeURIComponent(sub.id)}/sync`);
    } catch (err) {
      toast(`Could not start a sync: ${err.message}`, "error");
      return;
    }
    watch(items.get(sub.id)?.sub || sub);
  }

  // Re-read the subscription until the worker has recorded a sync (success or failure).
  function watch(before) {
    if (watching.has(before.id)) return;
    watching.add(before.id);
    upsert(items.get(before.id)?.sub || before);
    let tries = 0;
    const tick = async () => {
      timers.delete(timer);
      if (!alive || !items.has(before.id)) return;
      tries += 1;
      let now;
      try {
        now = await get(`ical-subscriptions/${encodeURIComponent(before.id)}`);
      } catch (err) {
        watching.delete(before.id);
        if (err.status === 404) {
          items.get(before.id)?.li.remove();
          items.delete(before.id);
          showEmpty();
        }
        return;
      }
      if (!alive) return;
      const moved = now.updated_at !== before.updated_at || now.last_synced_at !== before.last_synced_at;
      if (moved || tries >= POLL_TRIES) {
        watching.delete(before.id);
        upsert(now);
        if (moved) toast(now.last_error ? `Sync failed: ${now.last_error}` : `Synced: ${now.event_count} events`, now.last_error ? "error" : "ok");
        else toast("The sync has not finished yet; it will show here once it has (reload the page).", "info");
        return;
      }
      items.get(before.id).sub = now;
      timer = setTimeout(tick, POLL_MS);
      timers.add(timer);
    };
    let timer = setTimeout(tick, POLL_MS);
    timers.add(timer);
  }

  async function remove(sub) {
    const name = sub.label || sub.url;
    const ok = await confirmDialog(
      `Delete the subscription “${name}”? Its ${sub.event_count} imported events are removed from ${calName.get(sub.calendar_id) || "the calendar"}.`,
      "Delete subscription",
    );
    if (!ok) return;
    try {
      await del(`ical-subscriptions/${encodeURIComponent(sub.id)}`);
    } catch (err) {
      toast(`Could not delete: ${err.message}`, "error");
      return;
    }
    items.get(sub.id)?.li.remove();
    items.delete(sub.id);
    watching.delete(sub.id);
    showEmpty();
    toast("Subscription deleted", "ok");
  }

  let subs;
  try {
    subs = await all(`agents/${encodeURIComponent(agent.id)}/ical-subscriptions`);
  } catch (err) {
    listBox.append(h("p", { class: "alert", role: "alert" }, `The subscriptions could not be listed: ${err.message}`));
    return;
  }
  subs.forEach((s) => upsert(s));
  showEmpty();
  // a subscription that has never synced yet is probably syncing right now: follow it
  subs.filter((s) => !s.last_synced_at && !s.last_error && s.status === "active").forEach((s) => watch(s));
}
