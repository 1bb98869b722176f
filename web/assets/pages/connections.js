// Connections (org only): provider accounts (Google, Microsoft 365 through OAuth; iCloud and
// CalDAV with a password) whose calendars sync both ways with an agent's calendars. Lists each
// with its sync state (polled while a round runs), a banner when the provider wants the user to
// sign in again (reauthorization_required → "Reconnect", the same /start flow), choosing and
// mapping calendars, conflicts, a full resync, disconnecting. Coming back from the provider's
// consent page the URL carries ?connection_id=…&state=… or ?error=… before the hash.
import { all, get, patch, post, del } from "/assets/api.js";
import { clear, clearErrors, confirmDialog, empty, field, h, onSubmit, section, showError, toast, when } from "/assets/ui.js";

const PROVIDERS = { google: "Google", microsoft: "Microsoft 365", icloud: "iCloud", caldav: "CalDAV" };
const OAUTH = new Set(["google", "microsoft"]);
const REAUTHORIZE = "reauthorization_required";
const POLL_MS = 2000;
const STATUS = { active: "ok", error: "error", disconnected: "hold" };
// ?error=… of the OAuth return (chronary/services/oauth.py): what happened, in words
const RETURN_ERRORS = {
  access_denied: "The sign-in was cancelled or refused at the provider, so nothing was connected.",
  expired_state: "The sign-in took longer than 10 minutes and expired. Start again.",
  invalid_grant: "The provider refused the authorization. Start the sign-in again.",
  invalid_request: "The provider sent no authorization. Start the sign-in again.",
  provider_error: "The provider answered with an error while finishing the sign-in. Try again in a moment.",
  connection_gone: "The connection was disconnected while you were signing in.",
  server_error: "This server could not finish the sign-in. Try again; the server log says more.",
};

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

// A group of controls that the API's validation errors can name (ui.showError looks up
// [name=param] and its "<id>-error" slot): a fieldset named like the API field.
function group(name, legend, ...children) {
  const id = `g-${name}-${Math.random().toString(36).slice(2, 7)}`;
  return h(
    "fieldset",
    { class: "group", name, id, tabindex: "-1", "aria-describedby": `${id}-error` },
    h("legend", {}, legend),
    ...children,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }),
  );
}

const label = (c) => `${PROVIDERS[c.provider] || c.provider} · ${c.email || c.username || "account"}`;
const running = (c) => Boolean(c.last_sync && c.last_sync.started_at && !c.last_sync.finished_at);
const waiting = (c) => !c.last_sync && c.status === "active";

async function startOAuth(provider, agentId, connectionId) {
  const body = { provider, agent_id: agentId, return_url: `${location.origin}/#/connections` };
  if (connectionId) body.connection_id = connectionId;
  const started = await post("connections/start", body);
  location.assign(started.redirect_url);
}

export default async function render(root, ctx) {
  useCss();
  let alive = true;
  let timer = null;
  ctx.onCleanup(() => {
    alive = false;
    clearTimeout(timer);
  });
  root.append(
    h("h1", {}, "Connections"),
    h(
      "p",
      { class: "page-intro" },
      "Connect an agent to a Google, Microsoft 365, iCloud or CalDAV account: the calendars you choose sync both ways ",
      "with the agent's calendars in Chronary.",
    ),
  );

  // -- back from the provider's consent page -------------------------------------------------
  const query = new URLSearchParams(location.search);
  const returned = { id: query.get("connection_id"), error: query.get("error") };
  if (returned.id || returned.error) history.replaceState(null, "", location.pathname + location.hash);
  const returnBox = h("div", { "aria-live": "polite" });
  root.append(returnBox);
  if (returned.error) {
    const text = RETURN_ERRORS[returned.error] || `The sign-in did not complete (${returned.error}).`;
    returnBox.append(h("div", { class: "alert", role: "alert" }, h("strong", {}, "Not connected. "), text, " ", h("code", {}, returned.error)));
    toast(`Not connected: ${text}`, "error");
  }

  const agents = await all("agents");
  const agentName = new Map(agents.map((a) => [a.id, a.name]));
  const items = new Map(); // id → {con, li, body}
  const requested = new Map(); // id → last_sync.started_at before "Sync now"
  const list = h("ul", { class: "items", "aria-label": "Connected accounts" });
  const listBox = h("div", {}, list);

  root.append(section("Connected accounts", listBox));

  // -- connect -------------------------------------------------------------------------------
  if (agents.length === 0) {
    root.append(
      section(
        "Connect an account",
        empty("A connection syncs an agent's calendars, and there are no agents yet. Create an agent first.", h("a", { href: "#/agents" }, "Go to agents")),
      ),
    );
  } else {
    const agentField = field(
      "For agent",
      "agent_id",
      { tag: "select", options: agents.map((a) => [a.id, `${a.name} (${a.id})`]) },
      "The account's calendars are mirrored into this agent's calendars.",
    );
    const agentSelect = agentField.querySelector("select");
    const oauthForm = h(
      "form",
      { "aria-label": "Connect with Google or Microsoft 365", onsubmit: (e) => e.preventDefault() },
      group(
        "provider",
        "Sign in at the provider",
        h(
          "div",
          { class: "row" },
          h("button", { type: "button", onclick: () => oauth("google") }, "Connect Google"),
          h("button", { type: "button", onclick: () => oauth("microsoft") }, "Connect Microsoft 365"),
        ),
        h("p", { class: "help" }, "You are sent to the provider to allow access, then back here."),
      ),
    );
    async function oauth(provider) {
      clearErrors(oauthForm);
      const buttons = oauthForm.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        await startOAuth(provider, agentSelect.value);
      } catch (err) {
        showError(oauthForm, err);
        buttons.forEach((b) => (b.disabled = false));
      }
    }

    const serverField = field("Server URL", "server_url", { type: "url", attrs: { placeholder: "https://caldav.icloud.com", inputmode: "url", autocomplete: "off" } }, "iCloud: leave empty (https://caldav.icloud.com). CalDAV: your server's address, e.g. https://dav.example.com/.");
    const passwordForm = h(
      "form",
      { "aria-label": "Connect iCloud or CalDAV" },
      h(
        "div",
        { class: "form-grid" },
        field("Account type", "provider", { tag: "select", options: [["icloud", "iCloud"], ["caldav", "CalDAV server"]] }),
        field("Username", "username", { attrs: { required: true, autocomplete: "username", placeholder: "Apple ID or user name" } }),
        field("Password", "password", { type: "password", attrs: { required: true, autocomplete: "current-password" } }, "For iCloud an app-specific password (appleid.apple.com). Stored encrypted."),
        serverField,
      ),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Connect account")),
    );
    const providerSelect = passwordForm.querySelector('select[name="provider"]');
    const serverInput = serverField.querySelector("input");
    const syncServer = () => {
      const caldav = providerSelect.value === "caldav";
      serverInput.required = caldav;
      serverInput.placeholder = caldav ? "https://dav.example.com/" : "https://caldav.icloud.com";
    };
    providerSelect.addEventListener("change", syncServer);
    syncServer();
    onSubmit(passwordForm, async (v) => {
      const body = { provider: v.provider, agent_id: agentSelect.value, username: v.username, password: v.password };
      if (v.server_url.trim()) body.server_url = v.server_url.trim();
      const con = await post("connections", body);
      passwordForm.reset();
      syncServer();
      toast(`Connected ${label(con)}: choose the calendars to sync`, "ok");
      upsert(con, true);
      openPanel(con.id, "calendars");
    });

    root.append(
      section(
        "Connect an account",
        agentField,
        h("h3", {}, "Google or Microsoft 365"),
        oauthForm,
        h("h3", {}, "iCloud or another CalDAV server"),
        passwordForm,
      ),
    );
  }

  // -- list ----------------------------------------------------------------------------------
  function upsert(con, first = false) {
    const known = items.get(con.id);
    if (known) {
      known.con = con;
      const body = renderBody(con);
      const focused = known.body.contains(document.activeElement) ? document.activeElement.textContent : null;
      known.body.replaceWith(body);
      known.body = body;
      if (focused) [...body.querySelectorAll("button")].find((b) => b.textContent === focused && !b.disabled)?.focus();
    } else {
      const body = renderBody(con);
      const panel = h("div", { class: "panel", hidden: true });
      const li = h("li", { class: "item", dataset: { id: con.id }, "aria-label": `Connection ${label(con)}` }, body, panel);
      items.set(con.id, { con, li, body, panel, open: null });
      if (first) list.prepend(li);
      else list.append(li);
    }
    showEmpty();
    schedule();
  }

  function showEmpty() {
    listBox.querySelector(".empty")?.remove();
    if (items.size === 0) {
      listBox.append(empty("No accounts connected yet. Connect Google or Microsoft 365, or add an iCloud or CalDAV account below."));
    }
  }

  function renderBody(con) {
    const sync = con.last_sync;
    const busy = running(con) || requested.has(con.id);
    const synced = con.calendars.filter((c) => c.sync);
    const reauth = con.status_reason === REAUTHORIZE;
    const provider = PROVIDERS[con.provider] || con.provider;
    // the last action's error (a 429, a failed /start): kept across re-renders while polling
    const problem = h("p", { class: "field-error", role: "alert" }, items.get(con.id)?.problem || "");
    const say = (message) => {
      problem.textContent = message || "";
      const item = items.get(con.id);
      if (item) item.problem = message || null;
    };
    return h(
      "div",
      { class: "summary" },
      h(
        "div",
        { class: "item-head" },
        h("h3", {}, label(con)),
        h(
          "div",
          { class: "badges" },
          h("span", { class: `badge ${STATUS[con.status] || ""}` }, con.status),
          h("span", { class: "badge" }, con.sync_mode),
        ),
      ),
      reauth
        ? h(
            "div",
            { class: "banner reauth", role: "alert" },
            h("strong", {}, `${provider} needs you to sign in again. `),
            OAUTH.has(con.provider)
              ? `${provider} no longer accepts this connection's authorization (the password changed, access was removed, or it expired), so syncing has stopped. Reconnect to resume; nothing is lost.`
              : `The server no longer accepts the saved password, so syncing has stopped. Try again, or disconnect and connect again with the new password.`,
            h(
              "div",
              { class: "actions" },
              OAUTH.has(con.provider)
                ? h(
                    "button",
                    {
                      type: "button",
                      "aria-label": `Reconnect ${label(con)}`,
                      onclick: async (e) => {
                        const button = e.currentTarget;
                        say(null);
                        button.disabled = true;
                        try {
                          await startOAuth(con.provider, con.agent_id, con.id);
                        } catch (err) {
                          say(err.message);
                          button.disabled = false;
                        }
                      },
                    },
                    "Reconnect",
                  )
                : h("button", { type: "button", onclick: () => refresh(con, say) }, "Try again now"),
            ),
            problem,
          )
        : con.status === "error" && con.status_reason
          ? h("p", { class: "alert", role: "alert" }, `Syncing stopped: ${con.status_reason}`)
          : null,
      busy
        ? h("p", { class: "syncing-note", role: "status" }, "Syncing…")
        : waiting(con)
          ? h("p", { class: "syncing-note", role: "status" }, "Waiting for the first sync…")
          : null,
      sync && sync.error && con.status !== "error" ? h("p", { class: "alert" }, `Last sync failed: ${sync.error}`) : null,
      meta([
        ["Agent", agentName.get(con.agent_id) || con.agent_id],
        ["Sync", `${con.sync_mode === "realtime" ? "Real time (push)" : "Polling"}, every ${con.sync_interval_minutes} min`],
        ["Last synced", con.last_synced_at ? when(con.last_synced_at) : "Not yet"],
        sync && sync.finished_at
          ? ["Last sync", h("span", { class: "counts" }, `${sync.pulled} pulled · ${sync.pushed} pushed · ${sync.conflicts} conflicts`)]
          : null,
        con.pending_pushes ? ["Waiting to push", `${con.pending_pushes} changes`] : null,
        ["Calendars synced", synced.length ? synced.map((c) => c.name || c.remote_id).join(", ") : "None yet: choose them under Calendars"],
      ]),
      h(
        "div",
        { class: "actions" },
        panelButton(con, "calendars", "Calendars"),
        panelButton(con, "conflicts", "Conflicts"),
        h("button", { type: "button", class: "secondary", disabled: busy, onclick: () => refresh(con, say) }, "Sync now"),
        h("button", { type: "button", class: "danger", onclick: () => disconnect(con) }, "Disconnect"),
      ),
      reauth ? null : problem,
    );
  }

  function panelButton(con, kind, text) {
    const open = items.get(con.id)?.open === kind;
    return h(
      "button",
      {
        type: "button",
        class: "secondary",
        "aria-expanded": String(open),
        "aria-label": `${text} of ${label(con)}`,
        dataset: { panel: kind },
        onclick: () => (items.get(con.id).open === kind ? closePanel(con.id) : openPanel(con.id, kind)),
      },
      text,
    );
  }

  function markOpen(item) {
    item.body.querySelectorAll("[data-panel]").forEach((b) => b.setAttribute("aria-expanded", String(b.dataset.panel === item.open)));
  }

  function closePanel(id) {
    const item = items.get(id);
    item.open = null;
    item.panel.hidden = true;
    clear(item.panel);
    markOpen(item);
  }

  async function openPanel(id, kind) {
    const item = items.get(id);
    item.open = kind;
    item.panel.hidden = false;
    clear(item.panel).append(h("p", { class: "loading" }, "Loading…"));
    markOpen(item);
    try {
      const content = kind === "calendars" ? await calendarsPanel(item.con) : await conflictsPanel(item.con);
      if (item.open === kind) clear(item.panel).append(content);
    } catch (err) {
      clear(item.panel).append(h("p", { class: "alert", role: "alert" }, `Could not load the ${kind}: ${err.message}`));
    }
  }

  // Choose which of the account's calendars sync, and into which Chronary calendar.
  async function calendarsPanel(con) {
    const [full, locals] = await Promise.all([
      get(`connections/${encodeURIComponent(con.id)}`, { "expand[]": "calendars" }),
      all(`agents/${encodeURIComponent(con.agent_id)}/calendars`),
    ]);
    const remotes = full.calendars;
    if (remotes.length === 0) {
      return empty("This account has no calendars Chronary can sync. Create one at the provider, then use Sync now.");
    }
    const rows = remotes.map((c, i) => {
      const box = h("input", { type: "checkbox", checked: c.sync, dataset: { remote: c.remote_id } });
      const options = [...(c.sync ? [] : [["", "A new calendar"]]), ...locals.map((l) => [l.id, l.name])];
      const into = field("Into Chronary calendar", `calendar_id_${i}`, { tag: "select", value: c.calendar_id || "", options });
      const select = into.querySelector("select");
      select.disabled = !c.sync;
      select.setAttribute("aria-label", `Chronary calendar for ${c.name || c.remote_id}`);
      box.addEventListener("change", () => (select.disabled = !box.checked));
      return {
        c,
        box,
        select,
        li: h(
          "li",
          {},
          h(
            "div",
            {},
            h(
              "label",
              { class: "check" },
              box,
              c.color ? h("span", { class: "swatch", dataset: { color: c.color } }) : null,
              `Sync “${c.name || c.remote_id}”`,
            ),
            c.read_only
              ? h("p", { class: "help" }, h("span", { class: "badge hold" }, "read-only"), " Events come in; changes made in Chronary cannot go back to it.")
              : null,
          ),
          into,
        ),
      };
    });
    rows.forEach(({ li, c }) => {
      const swatch = li.querySelector(".swatch");
      if (swatch) swatch.style.background = c.color; // a colour from the provider, set as a property, never markup
    });
    const form = h(
      "form",
      { "aria-label": `Calendars of ${label(con)}` },
      group("calendars", "Calendars in this account", h("ul", { class: "cal-map" }, rows.map((r) => r.li))),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Save calendars")),
    );
    onSubmit(form, async () => {
      const choices = [];
      for (const { c, box, select } of rows) {
        const sync = box.checked;
        const target = sync ? select.value : "";
        if (sync === c.sync && (!sync || target === (c.calendar_id || ""))) continue;
        const choice = { remote_id: c.remote_id, sync };
        if (sync && target) choice.calendar_id = target;
        choices.push(choice);
      }
      if (choices.length === 0) {
        toast("Nothing changed", "info");
        return;
      }
      const saved = await patch(`connections/${encodeURIComponent(con.id)}`, { calendars: choices });
      toast("Calendars saved: syncing them now", "ok");
      // the change queues a round at once: follow it like a "Sync now" (any round that starts
      // after the change has another started_at than the one the answer carries)
      requested.set(con.id, { started: saved.last_sync ? saved.last_sync.started_at : null, at: Date.now() });
      const fresh = await get(`connections/${encodeURIComponent(con.id)}`);
      upsert(fresh);
      await openPanel(con.id, "calendars");
    });
    return form;
  }

  async function conflictsPanel(con) {
    const page = await get(`connections/${encodeURIComponent(con.id)}/conflicts`, { limit: 100 });
    if (page.data.length === 0) {
      return empty("No conflicts. When an event changes both here and at the provider between two syncs, one change wins and the other is kept here.");
    }
    const provider = PROVIDERS[con.provider] || con.provider;
    return h(
      "div",
      {},
      h("p", { class: "muted" }, `${page.total} conflicts, newest first. The losing version is kept so nothing is silently lost.`),
      h(
        "ul",
        { class: "items" },
        page.data.map((x) =>
          h(
            "li",
            { class: "item" },
            meta([
              ["When", when(x.created_at)],
              ["Kept", x.winner === "local" ? "The Chronary version" : `The ${provider} version`],
              ["Event", h("span", { class: "mono" }, x.event_id || x.uid)],
              ["Why", x.reason],
            ]),
            h("details", {}, h("summary", {}, "The version that lost"), h("pre", { class: "payload" }, x.losing_version)),
          ),
        ),
      ),
    );
  }

  async function refresh(con, say) {
    say(null);
    try {
      const fresh = await post(`connections/${encodeURIComponent(con.id)}/refresh`);
      const base = (fresh || con).last_sync;
      requested.set(con.id, { started: base ? base.started_at : null, at: Date.now() });
      toast("Full resync requested", "ok");
      upsert(fresh || con);
    } catch (err) {
      say(err.message); // a 429 says when it may be asked again
      toast(err.message, "error");
    }
  }

  async function disconnect(con) {
    const ok = await confirmDialog(
      `Disconnect ${label(con)}? Chronary stops syncing and forgets its credentials (revoking them at the provider where it can). Events already mirrored stay in the agent's calendars as plain local events.`,
      "Disconnect",
    );
    if (!ok) return;
    try {
      await del(`connections/${encodeURIComponent(con.id)}`);
    } catch (err) {
      toast(`Could not disconnect: ${err.message}`, "error");
      return;
    }
    items.get(con.id)?.li.remove();
    items.delete(con.id);
    requested.delete(con.id);
    showEmpty();
    toast(`Disconnected ${label(con)}`, "ok");
  }

  // While a round runs (or one was asked for), re-read those connections.
  function schedule() {
    if (!alive || timer) return;
    const due = [...items.values()].some(({ con }) => running(con) || waiting(con) || requested.has(con.id));
    if (due) timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    timer = null;
    if (!alive) return;
    for (const [id, item] of [...items]) {
      const { con } = item;
      const asked = requested.get(id);
      if (!(running(con) || waiting(con) || asked)) continue;
      let fresh;
      try {
        fresh = await get(`connections/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err.status === 404) {
          item.li.remove();
          items.delete(id);
          showEmpty();
        }
        continue;
      }
      if (!alive) return;
      if (asked) {
        const started = fresh.last_sync ? fresh.last_sync.started_at : null;
        if ((started !== asked.started && !running(fresh)) || Date.now() - asked.at > 120000) requested.delete(id);
      }
      if (JSON.stringify(fresh) !== JSON.stringify(con) || Boolean(asked) !== requested.has(id)) upsert(fresh);
    }
    schedule();
  }

  let cons;
  try {
    cons = await all("connections");
  } catch (err) {
    listBox.append(h("p", { class: "alert", role: "alert" }, `The connections could not be listed: ${err.message}`));
    return;
  }
  cons.forEach((c) => upsert(c));
  showEmpty();

  if (returned.id) {
    const con = items.get(returned.id)?.con;
    if (con) {
      returnBox.append(
        h("div", { class: "banner ok", role: "status" }, h("strong", {}, `Connected ${label(con)}. `), "Choose which of its calendars to sync below."),
      );
      toast(`Connected ${label(con)}`, "ok");
      openPanel(con.id, "calendars");
      items.get(con.id).li.scrollIntoView({ block: "nearest" });
    } else {
      returnBox.append(h("div", { class: "alert", role: "alert" }, `The sign-in finished but connection ${returned.id} is not there any more.`));
    }
  }
}
