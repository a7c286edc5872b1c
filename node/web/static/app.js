// Signpost practitioner page. A plain ES module: no bundler, no CDN.
//
// What it does: sign in; check the NHS number as it is typed and tokenise it
// in this browser with the shared wasm module (the number is never sent to
// the server on this path); look up the lookup key; open the sealed entries
// here; show who is involved; request contact; watch for new involvement.
//
// ---------------------------------------------------------------------------
// The API this page assumes. Change paths and shapes here, in one place.
//
//   POST   /v1/session          {"username","password"}
//          → 200 {"user":{"name","role"},"csrfToken","expiresAt"} + cookie
//   GET    /v1/session          → 200 as above (after a reload), 401 if none
//   DELETE /v1/session          (X-CSRF-Token) → 204
//   POST   /v1/tokens/evaluate  (X-CSRF-Token)
//          {"purpose","epoch"?,"blinded":[base64]}
//          → 200 {"epoch","evaluated":[base64],"proof":base64}
//   POST   /v1/lookup           (X-CSRF-Token)
//          {"lookupKey":base64,"sealKey":base64,"purpose"}
//          → 200 {"entries":[base64 sealed entry],"holders":[Holder]}
//          The wasm module (ABI v1) cannot open entries, so the page hands
//          the seal key to its own node, which opens them, checks each
//          holder's signature against the federation and returns holders;
//          the seal key is used for this request only and never logged.
//          If the node refuses the sealKey field (400), the page retries
//          without it and can only count the entries.
//   POST   /v1/contact-requests (X-CSRF-Token)
//          {"nodeId","purpose","lookupKey":base64,"message"?}
//          → 200 {"status":"accepted"|"pending","contact"?,"agency"?}
//   GET    /v1/watch            WebSocket; send {"watch":lookupKey};
//          receive {"type":"watching"|"involved"|"withdrawn"|"error",
//                   "lookupKey"?,"entry"?:base64,"holder"?:Holder,"message"?}
//          On "involved" without a holder the page looks up again.
//   Holder = {"nodeId","agency","category","since"}
//   Errors = {"error":{"code","message"}}; 401 means sign in again.
// ---------------------------------------------------------------------------

export const api = {
  session: "/v1/session",
  evaluate: "/v1/tokens/evaluate",
  lookup: "/v1/lookup",
  contact: "/v1/contact-requests",
  watch: "/v1/watch",
  wasmLoader: "/wasm/signpost.js",
  csrfHeader: "X-CSRF-Token",
};

// ---------------------------------------------------------------------------
// The wasm adapter: the only code that knows the loader's exports
// (wasm/web/signpost.js, ABI v1: load(), validate(scheme, inputs),
// blind(scheme, numbers), finalize(blinding, publicKey, purpose, epoch,
// evaluated, proof)). Bytes cross the API as base64 strings.
// ---------------------------------------------------------------------------
const SCHEME = "nhs";

export function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(text) {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export const engine = {
  mod: null,
  loading: null,

  load() {
    if (!this.loading) {
      this.loading = import(api.wasmLoader).then(async (m) => {
        this.mod = await m.load();
        return this.mod;
      });
      this.loading.catch(() => {
        this.loading = null; // allow a retry
      });
    }
    return this.loading;
  },

  // validate → {ok, canonical, display, reason}; reason is the module's
  // specific sentence ("check digit should be 7, is 4").
  validate(input) {
    const [r] = this.mod.validate(SCHEME, [input]);
    return { ok: !!r.valid, canonical: r.normalized || "", display: r.formatted || "", reason: r.reason || "" };
  },

  // blind(canonical) → {blinded: base64, state}
  blind(canonical) {
    const b = this.mod.blind(SCHEME, [canonical]);
    return { blinded: toBase64(b.blinded[0]), state: b };
  },

  // finalize(state, evaluation response, purpose) → {lookupKey, sealKey}
  // as base64; the proof is checked inside the module.
  finalize(state, ev, purpose) {
    const pub = ev.issuerPublicKey ? fromBase64(ev.issuerPublicKey) : new Uint8Array(0);
    const [t] = this.mod.finalize(state, pub, purpose, ev.epoch, [fromBase64(ev.evaluated[0])], fromBase64(ev.proof));
    return { lookupKey: toBase64(t.lookupKey), sealKey: toBase64(t.sealKey) };
  },
};

// ---------------------------------------------------------------------------
// State and small helpers.
// ---------------------------------------------------------------------------
const state = {
  csrf: "",
  user: null,
  keys: null, // {lookupKey, sealKey} of the current search
  purpose: "",
  holders: new Map(), // nodeId → holder row
  socket: null,
};

const $ = (id) => document.getElementById(id);

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers[api.csrfHeader] = state.csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new APIError(0, "network", "The node could not be reached. Check your connection and try again.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    if (res.status === 401 && path !== api.session) signedOut();
    throw new APIError(res.status, e.code || "http_" + res.status, e.message || "The node answered with an error (" + res.status + ").");
  }
  return data;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---------------------------------------------------------------------------
// Errors: an inline message on the field's group and a summary at the top
// that takes focus, as the GOV.UK Design System's error pattern does.
// ---------------------------------------------------------------------------
function setFieldError(field, message) {
  const group = $(field + "-group");
  const msg = $(field + "-error");
  const input = group ? group.querySelector("input, select") : null;
  if (!group || !msg) return;
  if (message) {
    msg.textContent = message;
    msg.hidden = false;
    group.classList.add("sp-form-group--error");
    if (input) {
      input.classList.add(input.tagName === "SELECT" ? "sp-select--error" : "sp-input--error");
      input.setAttribute("aria-invalid", "true");
    }
  } else {
    msg.textContent = "";
    msg.hidden = true;
    group.classList.remove("sp-form-group--error");
    if (input) {
      input.classList.remove("sp-input--error", "sp-select--error");
      input.removeAttribute("aria-invalid");
    }
  }
}

// showSummary([{field, inputId, message}]) lists errors and moves focus to
// the summary; an empty list hides it.
function showSummary(errors) {
  const box = $("error-summary");
  const list = $("error-summary-list");
  list.replaceChildren();
  if (!errors.length) {
    box.hidden = true;
    return;
  }
  for (const e of errors) {
    const li = document.createElement("li");
    if (e.inputId) {
      const a = document.createElement("a");
      a.href = "#" + e.inputId;
      a.textContent = e.message;
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        const el = $(e.inputId);
        if (el) el.focus();
      });
      li.append(a);
    } else {
      li.textContent = e.message;
    }
    list.append(li);
  }
  box.hidden = false;
  box.focus();
}

// ---------------------------------------------------------------------------
// Sign in and out.
// ---------------------------------------------------------------------------
function signedIn(session) {
  state.csrf = session.csrfToken;
  state.user = session.user;
  $("account-name").textContent = session.user.name + " (" + session.user.role + ")";
  $("account").hidden = false;
  $("signin").hidden = true;
  $("search").hidden = false;
  showSummary([]);
  engine.load().then(
    () => {
      setStatus("");
      if ($("nhs-number").value.trim()) checkNumber(false); // typed before the module was ready
    },
    () => setStatus("The NHS number checker could not be loaded, so searching is not possible. Reload the page to try again."),
  );
}

function signedOut() {
  state.csrf = "";
  state.user = null;
  closeWatch();
  $("account").hidden = true;
  $("search").hidden = true;
  $("results").hidden = true;
  $("signin").hidden = false;
}

async function onSignIn(ev) {
  ev.preventDefault();
  const username = $("username").value.trim();
  const password = $("password").value;
  const errors = [];
  setFieldError("username", username ? "" : "Enter your username");
  setFieldError("password", password ? "" : "Enter your password");
  if (!username) errors.push({ inputId: "username", message: "Enter your username" });
  if (!password) errors.push({ inputId: "password", message: "Enter your password" });
  if (errors.length) return showSummary(errors);
  $("signin-button").disabled = true;
  try {
    const session = await call("POST", api.session, { username, password });
    $("password").value = "";
    signedIn(session);
    $("nhs-number").focus();
  } catch (e) {
    showSummary([{ inputId: "username", message: e.code === "unauthenticated" ? "Wrong username or password" : e.message }]);
  } finally {
    $("signin-button").disabled = false;
  }
}

async function onSignOut() {
  try {
    await call("DELETE", api.session);
  } catch {
    // signed out either way
  }
  signedOut();
  setStatus("You have signed out.");
  $("username").focus();
}

// ---------------------------------------------------------------------------
// Checking the NHS number as it is typed.
// ---------------------------------------------------------------------------
let touched = false;

function checkNumber(final) {
  const input = $("nhs-number").value;
  if (!engine.mod) return null;
  const digits = input.replace(/[^0-9]/g, "").length;
  if (!input.trim()) {
    setFieldError("nhs", final ? "Enter an NHS number" : "");
    return final ? { ok: false, reason: "Enter an NHS number" } : null;
  }
  const r = engine.validate(input);
  // While typing, wait for ten digits (or a stray character) before
  // complaining; on blur or submit, say what is wrong at once.
  if (r.ok || final || touched || digits >= 10 || /[^0-9 \-]/.test(input)) {
    setFieldError("nhs", r.ok ? "" : r.reason);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Searching: validate, blind, evaluate, finalize, look up, open.
// ---------------------------------------------------------------------------
async function onSearch(ev) {
  ev.preventDefault();
  try {
    await engine.load();
  } catch {
    return showSummary([{ message: "The NHS number checker could not be loaded. Reload the page to try again." }]);
  }
  touched = true;
  const r = checkNumber(true);
  if (!r || !r.ok) {
    return showSummary([{ inputId: "nhs-number", message: (r && r.reason) || "Enter a valid NHS number" }]);
  }
  showSummary([]);
  const purpose = $("purpose").value;
  $("search-button").disabled = true;
  setStatus("Searching…");
  closeWatch();
  try {
    const b = engine.blind(r.canonical);
    const ev = await call("POST", api.evaluate, { purpose, blinded: [b.blinded] });
    state.keys = engine.finalize(b.state, ev, purpose);
    state.purpose = purpose;
    showResults(await lookup());
    setStatus("");
  } catch (e) {
    setStatus("");
    showSummary([{ message: e.message }]);
  } finally {
    $("search-button").disabled = false;
  }
}

// lookup asks the node for the entries under the current lookup key.
let sealKeyRefused = false;
async function lookup() {
  const body = { lookupKey: state.keys.lookupKey, purpose: state.purpose };
  if (!sealKeyRefused) body.sealKey = state.keys.sealKey;
  try {
    return await call("POST", api.lookup, body);
  } catch (e) {
    if (e.status !== 400 || sealKeyRefused) throw e;
    sealKeyRefused = true;
    delete body.sealKey;
    return await call("POST", api.lookup, body);
  }
}

function holdersFrom(found) {
  return found.holders || [];
}

function showResults(found) {
  state.holders.clear();
  $("results-body").replaceChildren();
  $("notices").replaceChildren();
  for (const h of holdersFrom(found)) addHolder(h, false);
  updateSummary((found.entries || []).length);
  $("results").hidden = false;
  $("watch-button").disabled = false;
  $("watch-button").textContent = "Tell me if anyone else becomes involved";
  $("results-title").focus();
}

function updateSummary(entries) {
  const n = state.holders.size;
  let text = n === 0 ? "No other agency holds a record for this person for this purpose." : n === 1 ? "1 agency holds a record." : n + " agencies hold a record.";
  if (n === 0 && entries > 0) text = entries + " records were found, but this node could not open them to say whose they are.";
  $("results-summary").textContent = text;
  $("results-table").hidden = n === 0;
}

function formatSince(s) {
  const d = new Date(s);
  if (isNaN(d)) return "";
  return d.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
}

function addHolder(h, isNew) {
  const id = h.nodeId || h.holder || "";
  if (!id || state.holders.has(id)) return false;
  const tr = document.createElement("tr");
  tr.className = "sp-table__row" + (isNew ? " sp-table__row--new" : "");
  const agency = h.agency || id;
  for (const text of [agency, h.category || h.kind || "", formatSince(h.since || h.registeredAt)]) {
    const td = document.createElement("td");
    td.className = "sp-table__cell";
    td.textContent = text;
    tr.append(td);
  }
  const td = document.createElement("td");
  td.className = "sp-table__cell";
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "sp-button sp-button--secondary sp-button--small";
  btn.textContent = "Request contact";
  const hidden = document.createElement("span");
  hidden.className = "sp-visually-hidden";
  hidden.textContent = " from " + agency;
  btn.append(hidden);
  btn.addEventListener("click", () => requestContact(id, agency, btn, td));
  td.append(btn);
  tr.append(td);
  $("results-body").append(tr);
  state.holders.set(id, tr);
  return true;
}

async function requestContact(nodeId, agency, btn, cell) {
  btn.disabled = true;
  try {
    const ans = await call("POST", api.contact, { nodeId, purpose: state.purpose, lookupKey: state.keys.lookupKey });
    const p = document.createElement("p");
    p.className = "sp-body";
    p.textContent =
      ans.status === "accepted"
        ? "Contact: " + (ans.contact || agency)
        : "Request sent. " + agency + " will get back to you.";
    cell.replaceChildren(p);
    notice("Contact request", "Sent to " + agency + ".");
  } catch (e) {
    btn.disabled = false;
    showSummary([{ message: e.message }]);
  }
}

// ---------------------------------------------------------------------------
// Watching for new involvement over the WebSocket.
// ---------------------------------------------------------------------------
function notice(kind, text) {
  const li = document.createElement("li");
  const tag = document.createElement("strong");
  tag.className = "sp-tag";
  tag.textContent = kind;
  li.append(tag, document.createTextNode(text));
  $("notices").prepend(li);
}

// onInvolved adds the new holder: from the notice if the node could open
// it, else by looking up again.
async function onInvolved(holder) {
  let holders = holder ? [holder] : [];
  if (!holder) {
    try {
      holders = holdersFrom(await lookup());
    } catch {
      notice("New", "Another agency may now be involved. Search again to see who.");
      return;
    }
  }
  for (const h of holders) {
    if (addHolder(h, true)) notice("New", (h.agency || h.nodeId) + " is now involved.");
  }
  updateSummary(0);
}

function closeWatch() {
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.close();
    state.socket = null;
  }
}

function onWatch() {
  if (!state.keys || state.socket) return;
  const url = new URL(api.watch, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  state.socket = ws;
  const btn = $("watch-button");
  btn.disabled = true;
  ws.onopen = () => ws.send(JSON.stringify({ watch: state.keys.lookupKey }));
  ws.onmessage = (m) => {
    let n;
    try {
      n = JSON.parse(m.data);
    } catch {
      return;
    }
    switch (n.type) {
      case "watching":
        btn.textContent = "Watching: you will be told here";
        notice("Watching", "You will be told here if another agency becomes involved.");
        break;
      case "involved":
        onInvolved(n.holder);
        break;
      case "withdrawn":
        notice("Update", "An agency no longer holds a record.");
        break;
      case "error":
        notice("Problem", n.message || "The watch failed.");
        break;
    }
  };
  ws.onclose = () => {
    state.socket = null;
    btn.disabled = false;
    btn.textContent = "Tell me if anyone else becomes involved";
    notice("Stopped", "No longer watching. Select the button to watch again.");
  };
}

// ---------------------------------------------------------------------------
// Wiring.
// ---------------------------------------------------------------------------
async function main() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", onSignOut);
  $("search-form").addEventListener("submit", onSearch);
  $("watch-button").addEventListener("click", onWatch);
  const nhs = $("nhs-number");
  nhs.addEventListener("input", () => checkNumber(false));
  nhs.addEventListener("blur", () => {
    if (nhs.value.trim()) {
      touched = true;
      checkNumber(false);
    }
  });
  engine.load().catch(() => {});
  try {
    signedIn(await call("GET", api.session));
  } catch {
    signedOut();
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", main);
} else {
  main();
}
