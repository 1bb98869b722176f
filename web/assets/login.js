// The sign-in page: a pasted API key becomes an HttpOnly session cookie (the key itself is
// never stored in the browser), then the calendar opens.
const form = document.getElementById("login-form");
const input = document.getElementById("api_key");
const error = document.getElementById("api_key-error");

if (new URLSearchParams(location.search).get("error") === "expired_link") {
  document.getElementById("link-error").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  const key = input.value.trim();
  if (!key) {
    error.textContent = "Paste an API key (chr_sk_… or chr_ak_…)";
    input.setAttribute("aria-invalid", "true");
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const r = await fetch("/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ api_key: key }),
    });
    if (r.ok) {
      input.value = "";
      location.assign("/#/calendar");
      return;
    }
    const body = await r.json().catch(() => null);
    error.textContent = (body && body.error && body.error.message) || `Sign-in failed (HTTP ${r.status})`;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } finally {
    button.disabled = false;
  }
});
