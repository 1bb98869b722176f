// API keys: the org's active keys, a new key whose secret is shown once, revoking (with a warning
// when it is the key this browser session signed in with: revoking it signs the session out).
// Key management is for org keys only (the API answers 403 to an agent key), so an agent session
// gets an explanation instead of a form.
import { all, del, post } from "/assets/api.js";
import { clear, confirmDialog, copyButton, empty, field, h, onSubmit, section, toast, when } from "/assets/ui.js";

function useCss() {
  if (!document.getElementById("admin-css")) {
    document.head.append(h("link", { id: "admin-css", rel: "stylesheet", href: "/assets/pages/admin.css" }));
  }
}

// A table that turns into labelled cards on a phone (admin.css: table.stack).
function stackTable(caption, columns, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stack" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", { scope: "col" }, label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            { dataset: { id: row.id } },
            columns.map(([label, cell, cls]) => h("td", { "data-label": label, class: cls || null }, cell(row))),
          ),
        ),
      ),
    ),
  );
}

export default async function render(root, ctx) {
  useCss();
  root.append(
    h("h1", {}, "API keys"),
    h(
      "p",
      { class: "page-intro" },
      "Org keys (chr_sk_…) can do everything; agent keys (chr_ak_…) see only their own agent. ",
      "A key's secret is shown once, when it is created: Chronary stores only a hash of it.",
    ),
  );

  if (!ctx.isOrg) {
    root.append(
      section(
        "Managed with an org key",
        h("p", {}, `This browser is signed in with an agent key (key ${ctx.session.key_id}) of agent ${ctx.agentId}.`),
        h("p", { class: "muted" }, "Keys are created and revoked with an org key: sign in with one to manage them."),
      ),
    );
    return;
  }

  const agents = await all("agents");
  const agentName = new Map(agents.map((a) => [a.id, a.name]));
  const revealed = h("div", { class: "reveal" });
  const listBox = h("div", { "aria-live": "polite" });

  const form = h(
    "form",
    { class: "form-grid", "aria-label": "Create an API key" },
    field("Name", "name", { attrs: { required: true, maxlength: 255, placeholder: "e.g. scheduling bot", autocomplete: "off" } }),
    field(
      "Scope",
      "agent_id",
      {
        tag: "select",
        options: [["", "Org key: every agent"], ...agents.map((a) => [a.id, `Agent key: ${a.name} (${a.id})`])],
      },
      "An agent key can only see and change that agent's calendars.",
    ),
    h("div", { class: "actions wide" }, h("button", { type: "submit" }, "Create key")),
  );
  onSubmit(form, async (values) => {
    const created = await post("keys", { name: values.name, agent_id: values.agent_id || null });
    form.reset();
    showSecret(created);
    toast(`Key “${created.name}” created`, "ok");
    await load();
  });

  function showSecret(key) {
    clear(revealed);
    const card = h(
      "section",
      { class: "card secret-card", "aria-labelledby": "new-key-title" },
      h("h2", { id: "new-key-title" }, `Your new key “${key.name}”`),
      h("p", {}, h("strong", {}, "Copy it now: it will not be shown again."), " If you lose it, revoke it and create another."),
      h("div", { class: "secret", "aria-label": "New API key secret" }, key.secret),
      h(
        "div",
        { class: "row" },
        copyButton(key.secret, "Copy key"),
        h("button", { type: "button", class: "secondary", onclick: () => clear(revealed) }, "I have saved it"),
      ),
    );
    revealed.append(card);
    card.querySelector("button.copy").focus();
  }

  async function revoke(key) {
    const mine = key.id === ctx.session.key_id;
    const message = mine
      ? `“${key.name}” is the key this browser signed in with. Revoking it signs you out at once, and every program using it gets 401 from then on. Revoke it?`
      : `Revoke “${key.name}” (…${key.last4})? Every program using it gets 401 from then on. This cannot be undone.`;
    if (!(await confirmDialog(message, "Revoke key"))) return;
    try {
      await del(`keys/${encodeURIComponent(key.id)}`);
    } catch (err) {
      toast(`Could not revoke “${key.name}”: ${err.message}`, "error");
      return;
    }
    if (mine) {
      location.assign("/login");
      return;
    }
    toast(`Key “${key.name}” revoked`, "ok");
    await load();
  }

  async function load() {
    let keys;
    try {
      keys = await all("keys");
    } catch (err) {
      clear(listBox).append(h("p", { class: "alert", role: "alert" }, `The keys could not be listed: ${err.message}`));
      return;
    }
    clear(listBox);
    if (keys.length === 0) {
      listBox.append(empty("There are no active keys. Create one above; its secret is shown once."));
      return;
    }
    const lastUsed = keys.some((k) => "last_used_at" in k);
    const columns = [
      [
        "Name",
        (k) => [h("span", {}, k.name), k.id === ctx.session.key_id ? [" ", h("span", { class: "badge ok" }, "this session")] : null],
      ],
      ["Scope", (k) => (k.agent_id ? `Agent: ${agentName.get(k.agent_id) || k.agent_id}` : "Org")],
      ["Key", (k) => h("code", {}, `${k.prefix}…${k.last4}`)],
      ["Created", (k) => when(k.created_at)],
    ];
    if (lastUsed) columns.push(["Last used", (k) => (k.last_used_at ? when(k.last_used_at) : "Never")]);
    columns.push([
      "Actions",
      (k) => h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${k.name}`, onclick: () => revoke(k) }, "Revoke"),
      "actions-cell",
    ]);
    listBox.append(stackTable("Active API keys", columns, keys));
  }

  root.append(revealed, section("Create a key", form), section("Active keys", listBox));
  await load();
}
