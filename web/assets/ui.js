// Small DOM helpers shared by the pages: safe element building, forms with the API's own
// validation messages beside the field they name, toasts, confirmations, copy buttons.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A labelled field; `name` is the API field it edits, so a validation error can find it.
export function field(label, name, input = {}, help) {
  const id = `f-${name.replace(/[^a-z0-9_-]/gi, "-")}-${Math.random().toString(36).slice(2, 7)}`;
  const control =
    input.tag === "select"
      ? h("select", { id, name, ...input.attrs }, (input.options || []).map(([v, t]) => h("option", { value: v, selected: v === input.value }, t)))
      : input.tag === "textarea"
        ? h("textarea", { id, name, ...input.attrs }, input.value || "")
        : h("input", { id, name, type: input.type || "text", value: input.value ?? "", ...input.attrs });
  control.setAttribute("aria-describedby", `${id}-error${help ? ` ${id}-help` : ""}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }),
  );
}

export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "number") out[el.name] = el.value === "" ? null : Number(el.value);
    else out[el.name] = el.value;
  }
  return out;
}

// Show an ApiError on a form: beside the field its `param` names, else at the top of the form.
export function showError(form, err) {
  clearErrors(form);
  const message = err && err.message ? err.message : String(err);
  const param = err && err.param ? String(err.param).split(/[.[]/)[0] : null;
  const target = param ? form.querySelector(`[name="${CSS.escape(param)}"]`) : null;
  if (target) {
    const slot = document.getElementById(`${target.id}-error`);
    if (slot) slot.textContent = message;
    target.setAttribute("aria-invalid", "true");
    target.focus();
    return;
  }
  let alert = form.querySelector(".form-error");
  if (!alert) {
    alert = h("p", { class: "form-error alert", role: "alert" });
    form.prepend(alert);
  }
  alert.textContent = message;
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  form.querySelectorAll(".form-error").forEach((el) => el.remove());
}

// Submit handler wrapper: disables the form while the request runs, shows the API's error.
export function onSubmit(form, fn) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await fn(formValues(form), form);
    } catch (err) {
      showError(form, err);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function confirmDialog(message, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": "Confirm" },
      h("p", {}, message),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(false) }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => close(true) }, confirmLabel),
      ),
    );
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary copy" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = h("textarea", {}, text);
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

export function empty(message, action) {
  return h("div", { class: "empty" }, h("p", {}, message), action || null);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function when(iso, timeZone) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: timeZone || undefined });
}
