// Signpost practitioner page. A plain ES module: no bundler, no CDN.
//
// What it does: sign in; check the NHS number as it is typed and tokenise it
// in this browser with the shared wasm module (the number is never sent to
// the server on this path); look up the lookup key; open the sealed entries
// here; show who is involved; request contact; watch for new involvement;
// the agency's inbox of contact requests from other agencies (answer with a
// named contact, or decline with a reason) and "My contact requests", both
// updated live.
//
// ---------------------------------------------------------------------------
// The API this page assumes. Change paths and shapes here, in one place.
//
//   POST   /v1/session          {"username","password"}
//          → 200 {"user":{"name","role"},"csrfToken","expiresAt",
//                 "agency":{"nodeId","name","category"},"purposes":[name]}
//          + cookie. The page names the agency and offers exactly the
//          purposes listed (none: no search).
//   GET    /v1/session          → 200 as above (after a reload), 401 if none
//   DELETE /v1/session          (X-CSRF-Token) → 204
//   POST   /v1/tokens/evaluate  (X-CSRF-Token)
//          {"purpose","epoch"?,"blinded":[base64]}
//          → 200 {"purpose","epoch","t","groupKey":base64,
//                 "partials":[{"issuer","index","publicShare":base64,
//                              "evaluated":[base64],"proof":base64}],
//                 "epochs":[epoch]}  (the purpose's keys in force, newest
//          first: during a rotation the page evaluates under each, naming
//          "epoch", and merges the lookups)
//          503 issuers_unavailable: fewer than t token issuers answered
//   POST   /v1/lookup           (X-CSRF-Token) {"lookupKey":base64,"purpose"}
//          → 200 {"entries":[base64 sealed entry],
//                 "members":[{"nodeId","agency","category","publicKey"}],
//                 "self":nodeId, "holders"?:[Holder]}
//          "self" is the node serving this page. As POST /v1/locate leaves
//          the caller's own agency out of the holders and says selfHolds,
//          the page lists only the OTHER agencies involved and says
//          separately that the practitioner's own agency holds a record;
//          there is no "request contact" for it. The seal key never leaves
//          the browser. Entries are opened and
//          their holder signatures checked here, by the wasm module (ABI v1
//          op 6, the loader's openEntries), against "members"
//          (engine.openEntries). Only if the module cannot open them (an
//          older module) does the page fall back to "holders", if the node
//          sent them, or else count the entries.
//   POST   /v1/contact-requests (X-CSRF-Token)
//          {"nodeId","purpose","lookupKey":base64,"message"?}
//          → 200 {"id","status":"accepted"|"pending","contact"?,"agency"?}
//          The page keeps, in this browser's local storage only, the last
//          four digits of the number each request (by id) was about: the
//          node never says whom a sent request concerns.
//   GET    /v1/contact-requests (practitioner, operator)
//          → 200 {"received":[Request],"sent":[Request]}  (sent: the user's own)
//   POST   /v1/contact-requests/{id}/answer  (X-CSRF-Token) {"contact"}
//   POST   /v1/contact-requests/{id}/decline (X-CSRF-Token) {"reason"}
//          → 200 Request; 409 contact_request_decided if someone was first
//   Request = {"id","direction":"sent"|"received","state":"new"|"answered"|
//              "declined","nodeId","agency"?,"requester","purpose",
//              "localId"?,"message"?,"contact"?,"reason"?,"decidedBy"?,
//              "created","updated","delivery"?:"pending"|"delivered"|"failed"}
//   GET    /v1/watch            WebSocket; send {"watch":lookupKey};
//          receive {"type":"watching"|"involved"|"withdrawn"|"error",
//                   "lookupKey"?,"entry"?:base64,"holder"?:Holder,"message"?}
//          On "involved" the page opens "entry" (or takes "holder"), or
//          else looks up again to recount. A second socket, opened at
//          sign-in with no key (the staff socket), receives
//          {"type":"contact-request","contact":Request} (the inbox: new or
//          newly decided) and {"type":"contact-answer","contact":Request}
//          (a decision on one of this user's requests).
//   POST   /v1/watches          (X-CSRF-Token) {"purpose","lookupKeys":[base64]}
//          → 201 Watch (a new watch), or 200 Watch when the user already
//          watches one of these keys for the purpose: that watch is renewed
//          and given the other keys (a search during a key rotation adds
//          the new key). The node holds it across reloads, tabs and
//          restarts until "expires" or until stopped; it never learns the
//          number: the page keeps the last four digits in this browser's
//          local storage, by watch id, and shows them under "My watches".
//   GET    /v1/watches          → 200 {"watches":[Watch]} (the user's own)
//   DELETE /v1/watches/{id}     (X-CSRF-Token) → 204 (404 watch_not_found)
//   POST   /v1/watches/{id}/seen (X-CSRF-Token) {"seq"} → 204
//   Watch = {"id","purpose","keys","started","expires","unseen",
//            "notices":[{"seq","type":"involved"|"withdrawn","entry"?,
//                        "at","seen"}]}
//          Every socket of the user (the staff socket included) also
//          receives each new notice of their watches live, as
//          {"type","lookupKey","entry","watchId","seq","at"}.
//   POST   /v1/audit/subject-access (auditor; X-CSRF-Token) {"nhsNumber"}
//          → 200 {"events":[{"index","time","actor","action","purpose"?,
//                 "count"?,"outcome","peer"?,"record"?,"detail"?}]}
//          The auditor's path sends the number to the node, which works out
//          the lookup keys for each purpose through the issuer (audited).
//   Holder = {"nodeId","agency","category","since"}
//   Errors = {"error":{"code","message"}}; 401 means sign in again.
// ---------------------------------------------------------------------------

export const api = {
  session: "/v1/session",
  evaluate: "/v1/tokens/evaluate",
  lookup: "/v1/lookup",
  contact: "/v1/contact-requests",
  subjectAccess: "/v1/audit/subject-access",
  watch: "/v1/watch",
  watches: "/v1/watches",
  wasmLoader: "/wasm/signpost.js",
  csrfHeader: "X-CSRF-Token",
};

// ---------------------------------------------------------------------------
// The wasm adapter: the only code that knows the loader's exports
// (wasm/web/signpost.js, ABI v1: load(), validate(scheme, inputs),
// blindThreshold(scheme, numbers), combine(blinding, keySet, partials),
// openEntries(sealKey, entries, members)). Bytes cross the API as base64
// strings.
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

  // validate → {ok, canonical, display, code, reason}; code is the
  // module's stable reason code ("nhs.check_digit"), which the page words
  // (numberError); reason is the module's own sentence, kept for the CLI
  // and the API.
  validate(input) {
    const [r] = this.mod.validate(SCHEME, [input]);
    return { ok: !!r.valid, canonical: r.normalized || "", display: r.formatted || "", code: r.code || "", reason: r.reason || "" };
  },

  // blind(canonical) → {blinded: base64, state}: validated and blinded
  // for the federation's threshold token function.
  blind(canonical) {
    const b = this.mod.blindThreshold(SCHEME, [canonical]);
    return { blinded: toBase64(b.blinded[0]), state: b };
  },

  // combine(state, evaluation response) → {lookupKey, sealKey} as base64.
  // The node returns t issuers' partial evaluations with each issuer's
  // public share; the module checks every partial's proof, combines t
  // valid ones, unblinds and finalises. The node never sees the token.
  combine(state, ev) {
    const keySet = {
      purpose: ev.purpose, epoch: ev.epoch, t: ev.t, groupKey: fromBase64(ev.groupKey),
      shares: ev.partials.map((p) => ({ index: p.index, nodeId: p.issuer, key: fromBase64(p.publicShare) })),
    };
    const partials = ev.partials.map((p) => ({ index: p.index, evaluated: p.evaluated.map(fromBase64), proof: fromBase64(p.proof) }));
    const [t] = this.mod.combine(state, keySet, partials);
    return { lookupKey: toBase64(t.lookupKey), sealKey: toBase64(t.sealKey) };
  },

  // canOpen reports whether the module can open entries.
  canOpen() {
    return !!(this.mod && typeof this.mod.openEntries === "function");
  },

  // openEntries(keys, entries, members) → [Holder], or null when the
  // module cannot open entries. The loader's openEntries (wasm/web/
  // signpost.js, ABI op 6) opens each sealed entry here, with the seal key
  // that never leaves this page, and checks the holder node's signature
  // against the members of the same lookup answer (node ids and public
  // keys). An entry that does not open or verify, and a tombstone, is
  // dropped, never shown. The entries' own signatures were checked by the
  // node's store when it accepted them. The agency name comes from the
  // member whose node signed the entry.
  openEntries(keys, entries, members) {
    if (!this.canOpen()) return null;
    const list = entries || [];
    if (list.length === 0) return [];
    const known = [];
    for (const m of members || []) {
      let pub;
      try {
        pub = fromBase64(m.publicKey || "");
      } catch {
        continue;
      }
      if (m.nodeId && pub.length === 32) known.push({ nodeId: m.nodeId, publicKey: pub });
    }
    const sealed = [];
    for (const e of list) {
      try {
        sealed.push(fromBase64(e));
      } catch {
        // not base64: dropped
      }
    }
    let results;
    try {
      results = this.mod.openEntries(fromBase64(keys.sealKey), sealed, known);
    } catch {
      return null; // the module refused the call: the page can only count
    }
    const out = [];
    for (const [i, r] of results.entries()) {
      if (!r.ok || r.withdrawn) continue;
      if (r.broker) {
        // A shielded service: not named; asked through its broker with
        // the entry's key (bytes 17..49 of the entry) and the sealed holder.
        const b = (members || []).find((x) => x.nodeId === r.broker);
        out.push({
          shielded: true, broker: r.broker, brokerAgency: (b && b.agency) || r.broker,
          entryKey: toBase64(sealed[i].slice(17, 49)), shield: toBase64(r.inner), since: new Date(r.registeredAt * 1000),
        });
        continue;
      }
      const m = (members || []).find((x) => x.nodeId === r.nodeId);
      out.push({ nodeId: r.nodeId, agency: (m && m.agency) || r.nodeId, category: r.category, since: new Date(r.registeredAt * 1000) });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------
// State and small helpers.
// ---------------------------------------------------------------------------
const state = {
  csrf: "",
  user: null,
  keys: null, // {lookupKey, sealKey} of the current search
  keySets: [], // the current search's keys, one per key in force, newest first
  holderKeys: new Map(), // nodeId → the lookup key its entry was found under
  purpose: "",
  members: [], // the federation's members from the last lookup
  self: "", // this node's id, from the lookup answer
  selfHolds: false, // whether this node's own agency holds a record
  holders: new Map(), // nodeId → holder row, other agencies only
  shielded: new Map(), // "shielded:" + entryKey → the shielded service's list item
  selfEntryKeys: new Set(), // a shielded node's own entry keys (its entries name its broker)
  socket: null,
  display: "", // the current search's number, as shown
  // The contact requests, by id, and the staff socket that keeps them
  // live (with its reconnection timer and attempt count).
  inbox: new Map(),
  sent: new Map(),
  relayed: new Map(), // requests this node, a broker, passed on to a shielded service
  watches: [], // the user's stored watches, oldest first (GET /v1/watches)
  staff: null,
  staffTimer: 0,
  staffTries: 0,
  pollTimer: 0, // an operator's inbox refresh
  // answerCells: request id → the results cell that says it was sent,
  // updated when the answer arrives (while the results are shown).
  answerCells: new Map(),
  // search counts searches and edits: an answer that comes back after the
  // number or purpose changed belongs to the old search and is dropped.
  search: 0,
};

const $ = (id) => document.getElementById(id);

class APIError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    // Seconds to wait before trying again (a 429's Retry-After), or 0.
    this.retryAfter = retryAfter || 0;
  }
}

// waitMessage says how long a refused request must wait, in words.
function waitMessage(e) {
  const n = e.retryAfter;
  if (!n) return "Too many attempts. Try again later.";
  if (n < 120) return "Too many attempts. Try again in " + n + (n === 1 ? " second." : " seconds.");
  const m = Math.ceil(n / 60);
  return "Too many attempts. Try again in " + m + " minutes.";
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
    const retry = parseInt(res.headers.get("Retry-After") || "", 10);
    throw new APIError(res.status, e.code || "http_" + res.status, e.message || "The node answered with an error (" + res.status + ").",
      Number.isFinite(retry) && retry > 0 ? retry : 0);
  }
  return data;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---------------------------------------------------------------------------
// Words: the one home of the labels this page shows for the API's slugs and
// codes (kinds of service, purposes, and why an NHS number was refused).
// ---------------------------------------------------------------------------

// categoryLabels names the kinds of service that agencies register as: the
// category slugs of records and of the federation's descriptors (the node's
// "category"). Categories are open-ended slugs; one not listed here is
// shown as words ("youth-offending-team" → "Youth offending team"), never
// as a slug.
const categoryLabels = {
  "children-social-care": "Children’s social care",
  "social-care": "Social care",
  school: "School",
  education: "Education",
  gp: "GP practice",
  "emergency-department": "Emergency department",
  health: "Health service",
};

// purposeLabels names the purposes (wasm/purpose's names); any other is
// shown as words. Its order is the order the page offers them in (the
// first is selected at first), whatever order the node lists them in; any
// other purpose comes after these, alphabetically.
const purposeLabels = {
  safeguarding: "Safeguarding",
  "direct-care": "Direct care",
};

// slugWords turns a slug into words: "youth-offending-team" → "Youth
// offending team".
function slugWords(slug) {
  const w = String(slug || "").replace(/-+/g, " ").trim();
  return w ? w.charAt(0).toUpperCase() + w.slice(1) : "";
}

export function categoryLabel(slug) {
  return Object.hasOwn(categoryLabels, slug) ? categoryLabels[slug] : slugWords(slug);
}

export function purposeLabel(name) {
  return Object.hasOwn(purposeLabels, name) ? purposeLabels[name] : slugWords(name);
}

// numberError words the module's reason code for a refused NHS number (the
// code's part after "nhs."), GOV.UK style: "Enter a valid NHS number" and
// why in plain words. A wrong check digit is "not a valid number: check it
// against the record", never which digit would make it valid: a mistyped
// number "corrected" that way is another person's. input is what was typed,
// to tell too short from too long and letters from other characters.
export function numberError(code, input) {
  const why = {
    short: "It is too short: an NHS number has 10 digits.",
    long: "It is too long: an NHS number has 10 digits.",
    letters: "It contains letters: an NHS number has only digits.",
    other: "It contains characters that are not digits: an NHS number has only digits, perhaps with spaces.",
    script: "It contains digits of another script: type it with the digits on a standard keyboard.",
    placeholder: "All its digits are the same, which is a placeholder, not a person’s number: check it against the record.",
    invalid: "It is not a valid number: check it against the record.",
  };
  const reason = String(code || "").replace(/^[a-z]+\./, "");
  const text = String(input || "");
  let w;
  switch (reason) {
    case "empty":
      return "Enter an NHS number";
    case "length":
      w = (text.match(/[0-9]/g) || []).length < 10 && text.length <= 64 ? why.short : why.long;
      break;
    case "invalid_character":
      w = /\p{L}/u.test(text) ? why.letters : why.other;
      break;
    case "non_ascii_digit":
      w = why.script;
      break;
    case "placeholder":
      w = why.placeholder;
      break;
    default: // check_digit, no_check_digit, and any code added later
      w = why.invalid;
  }
  return "Enter a valid NHS number. " + w;
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
  const agency = session.agency || {};
  const agencyName = agency.name || agency.nodeId || "";
  $("account-agency").textContent = agencyName;
  $("account-agency").hidden = !agencyName;
  $("search-agency").textContent = agencyName;
  $("search-as").hidden = !agencyName;
  $("account-name").textContent = session.user.name + " (" + session.user.role + ")";
  $("account").hidden = false;
  $("signin").hidden = true;
  const role = session.user.role;
  offerPurposes(session.purposes || []);
  $("search").hidden = role !== "practitioner";
  $("subject").hidden = role !== "auditor";
  $("operator").hidden = role === "practitioner" || role === "auditor";
  $("inbox").hidden = role !== "practitioner" && role !== "operator";
  $("mine").hidden = role !== "practitioner";
  $("watches").hidden = role !== "practitioner";
  if (role === "practitioner") {
    openStaff();
    loadWatches();
  }
  // The WebSocket is the practitioner's (GET /v1/watch): an operator's
  // inbox is fetched again every half minute instead.
  clearInterval(state.pollTimer);
  if (role === "operator") state.pollTimer = setInterval(loadContacts, 30000);
  if (role === "practitioner" || role === "operator") loadContacts();
  showSummary([]);
  engine.load().then(
    () => {
      setStatus("");
      for (const f of Object.keys(numberFields)) {
        if ($(numberFields[f].input).value.trim()) checkNumber(f, false); // typed before the module was ready
      }
    },
    () => setStatus("The NHS number checker could not be loaded, so searching is not possible. Reload the page to try again."),
  );
}

// offerPurposes fills the purpose list with the purposes the node says this
// user may look up under, and no other: a purpose the node would refuse is
// never offered. Without any, there is no search to make.
function offerPurposes(purposes) {
  const select = $("purpose");
  const was = select.value;
  select.replaceChildren();
  const known = Object.keys(purposeLabels);
  const rank = (p) => (known.includes(p) ? known.indexOf(p) : known.length);
  const offered = [...purposes].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  for (const p of offered) {
    const o = document.createElement("option");
    o.value = p;
    o.textContent = purposeLabel(p);
    select.append(o);
  }
  if (purposes.includes(was)) select.value = was;
  $("search-form").hidden = purposes.length === 0;
  $("no-purposes").hidden = purposes.length !== 0;
}

function signedOut() {
  state.csrf = "";
  state.user = null;
  clearResults();
  closeStaff();
  clearInterval(state.pollTimer);
  state.inbox.clear();
  state.sent.clear();
  state.relayed.clear();
  $("inbox-list").replaceChildren();
  $("mine-list").replaceChildren();
  $("relayed-list").replaceChildren();
  $("relayed").hidden = true;
  state.watches = [];
  $("watches-list").replaceChildren();
  $("watches").hidden = true;
  $("inbox").hidden = true;
  $("mine").hidden = true;
  $("account").hidden = true;
  $("search").hidden = true;
  $("results").hidden = true;
  $("subject").hidden = true;
  $("sar-results").hidden = true;
  $("operator").hidden = true;
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
    const first = { practitioner: "nhs-number", auditor: "sar-number" }[session.user.role];
    if (first) $(first).focus();
  } catch (e) {
    let message = e.message;
    if (e.code === "unauthenticated") message = "Wrong username or password";
    else if (e.status === 429) message = waitMessage(e);
    showSummary([{ inputId: "username", message }]);
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
// numberFields are the NHS number inputs: the practitioner's search and the
// auditor's subject-access request. Each is checked the same way.
const numberFields = {
  nhs: { input: "nhs-number", touched: false },
  sar: { input: "sar-number", touched: false },
};

function checkNumber(field, final) {
  const f = numberFields[field];
  const input = $(f.input).value;
  if (!engine.mod) return null;
  const digits = input.replace(/[^0-9]/g, "").length;
  if (!input.trim()) {
    setFieldError(field, final ? "Enter an NHS number" : "");
    return final ? { ok: false, message: "Enter an NHS number" } : null;
  }
  const r = engine.validate(input);
  r.message = r.ok ? "" : numberError(r.code, input);
  // While typing, wait for ten digits (or a stray character) before
  // complaining; on blur or submit, say what is wrong at once.
  if (r.ok || final || f.touched || digits >= 10 || /[^0-9 \-]/.test(input)) {
    setFieldError(field, r.message);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Searching: validate, blind, evaluate (t issuers), combine, look up, open.
// ---------------------------------------------------------------------------
async function onSearch(ev) {
  ev.preventDefault();
  try {
    await engine.load();
  } catch {
    return showSummary([{ message: "The NHS number checker could not be loaded. Reload the page to try again." }]);
  }
  numberFields.nhs.touched = true;
  const r = checkNumber("nhs", true);
  if (!r || !r.ok) {
    return showSummary([{ inputId: "nhs-number", message: (r && r.message) || "Enter a valid NHS number" }]);
  }
  showSummary([]);
  const purpose = $("purpose").value;
  clearResults();
  const search = state.search;
  $("search-button").disabled = true;
  setStatus("Searching…");
  try {
    const b = engine.blind(r.canonical);
    const ev = await call("POST", api.evaluate, { purpose, blinded: [b.blinded] });
    const keySets = [engine.combine(b.state, ev)];
    // During a key rotation's overlap the purpose has more than one key in
    // force (ev.epochs, newest first): the number is evaluated under each,
    // and every lookup key is asked, so that a record published under the
    // old key only is still found.
    for (const epoch of ev.epochs || []) {
      if (epoch === ev.epoch) continue;
      const bo = engine.blind(r.canonical);
      let evo;
      try {
        evo = await call("POST", api.evaluate, { purpose, epoch, blinded: [bo.blinded] });
      } catch (e) {
        // An older key being retired (this node or its issuers no longer
        // have it): the newer keys' answer stands, as POST /v1/locate's.
        if (e.code === "unknown_epoch" || e.code === "issuers_unavailable") continue;
        throw e;
      }
      keySets.push(engine.combine(bo.state, evo));
    }
    if (search !== state.search) return setStatus(""); // the number or purpose changed meanwhile
    state.keys = keySets[0];
    state.keySets = keySets;
    state.purpose = purpose;
    state.display = r.display;
    const found = await lookup();
    if (search !== state.search) return setStatus("");
    showResults(found, r.display, purpose);
    setStatus("");
  } catch (e) {
    setStatus("");
    showSummary([{ message: e.message }]);
  } finally {
    $("search-button").disabled = false;
  }
}

// lookup asks the node for the entries under each lookup key of the
// search (one, or one per key in force during a rotation) and merges the
// answers: {holders (an agency once), unshown (entries that gave no
// holder), members, self}. state.holderKeys remembers, per holder, the
// lookup key it was found under, for a contact request.
async function lookup() {
  const out = { holders: [], unshown: 0, members: [], self: "", selfEntryKeys: new Set() };
  const seen = new Set();
  for (const keys of state.keySets) {
    const found = await call("POST", api.lookup, { lookupKey: keys.lookupKey, purpose: state.purpose });
    out.members = found.members || out.members;
    out.self = found.self || out.self;
    if (found.selfEntryKey) state.selfEntryKeys.add(toBase64(fromBase64(found.selfEntryKey)));
    const holders = holdersFrom(keys, found);
    out.unshown += Math.max(0, (found.entries || []).length - holders.length);
    // Shielded services cannot be told apart across keys: as POST
    // /v1/locate, each is listed under the newest key it is found under,
    // and under an older key only for a broker not seen yet.
    const brokersHere = new Set();
    for (const h of holders) {
      const id = holderID(h);
      if (!state.holderKeys.has(id)) state.holderKeys.set(id, keys.lookupKey);
      if (h.shielded) {
        if (seen.has("broker:" + h.broker) && !brokersHere.has(h.broker)) continue;
        brokersHere.add(h.broker);
        out.holders.push(h);
        continue;
      }
      if (seen.has(id)) continue;
      seen.add(id);
      out.holders.push(h);
    }
    for (const b of brokersHere) seen.add("broker:" + b);
  }
  return out;
}

// holderID is a holder's key in the page's maps: its node id, or for a
// shielded service its entry's key.
function holderID(h) {
  return h.shielded ? "shielded:" + h.entryKey : h.nodeId || h.holder || "";
}

// holdersFrom turns one lookup answer into holders: opened here with keys
// if the module can, else as the node named them, else none (the entries
// are counted).
function holdersFrom(keys, found) {
  const opened = engine.openEntries(keys, found.entries, found.members);
  return opened || found.holders || [];
}

// clearResults takes the last search's answer off the page, the moment the
// number or the purpose is edited (or a new search starts): results must
// never stand under a number they do not belong to.
function clearResults() {
  state.search++;
  closeWatch();
  state.keys = null;
  state.keySets = [];
  state.holderKeys.clear();
  state.selfEntryKeys.clear();
  state.answerCells.clear();
  state.holders.clear();
  state.shielded.clear();
  state.selfHolds = false;
  $("results").hidden = true;
  $("results-body").replaceChildren();
  $("results-shielded").replaceChildren();
  $("results-shielded").hidden = true;
  $("notices").replaceChildren();
  $("results-for").textContent = "";
  $("results-summary").textContent = "";
}

// showResults shows a lookup's answer, headed by the number and purpose it
// answers.
function showResults(found, display, purpose) {
  $("results-for").textContent = "For NHS number " + display + ", purpose: " + purposeLabel(purpose) + ".";
  state.holders.clear();
  state.shielded.clear();
  state.selfHolds = false;
  $("results-body").replaceChildren();
  $("results-shielded").replaceChildren();
  $("notices").replaceChildren();
  state.members = found.members || [];
  state.self = found.self || "";
  for (const h of found.holders) addHolder(h, false);
  updateSummary(found.unshown);
  $("results").hidden = false;
  $("watch-button").removeAttribute("aria-disabled");
  $("watch-button").textContent = "Tell me if anyone else becomes involved";
  $("results-title").focus();
}

// updateSummary says how many other agencies are shown and, separately,
// whether the practitioner's own agency holds a record; when none could be
// named, how many sealed records were found. unshown counts the sealed
// entries that gave no holder (neither another agency nor this one).
function updateSummary(unshown) {
  const n = state.holders.size;
  let text;
  if (n === 0 && unshown > 0 && engine.canOpen()) {
    text =
      unshown === 1
        ? "1 record was found, but it could not be verified, so it is not shown."
        : unshown + " records were found, but none could be verified, so none is shown.";
  } else if (n === 0 && unshown > 0) {
    text =
      unshown === 1
        ? "1 record was found, but this browser cannot yet open it to say which agency holds it."
        : unshown + " records were found, but this browser cannot yet open them to say which agencies hold them.";
  } else if (n === 0 && state.shielded.size > 0) {
    text = "No other agency is named.";
  } else if (n === 0) {
    text = "No other agency holds a record for this person for this purpose.";
  } else {
    text = n === 1 ? "1 other agency holds a record." : n + " other agencies hold a record.";
  }
  $("results-summary").textContent = text;
  $("results-self").textContent = state.selfHolds ? (n === 0 ? "Your agency holds a record." : "Your agency also holds a record.") : "";
  $("results-self").hidden = !state.selfHolds;
  $("results-table").hidden = n === 0;
  $("since-hint").hidden = n === 0;
  $("results-shielded").hidden = state.shielded.size === 0;
}

// cell makes a table cell. label is its column's header: on a narrow screen
// the table's rows stack (style.css, .sp-table--stack) and each cell shows
// its header beside it, from data-label.
function cell(label, text) {
  const td = document.createElement("td");
  td.className = "sp-table__cell";
  if (label) td.dataset.label = label;
  td.textContent = text;
  return td;
}

function formatSince(s) {
  const d = new Date(s);
  if (isNaN(d)) return "";
  return d.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
}

// addHolder adds a row for another agency's holder and reports whether it
// is new; the practitioner's own agency gets no row (and so no "request
// contact"), only state.selfHolds, as POST /v1/locate's selfHolds.
function addHolder(h, isNew) {
  if (h.shielded) return addShielded(h, isNew);
  const id = h.nodeId || h.holder || "";
  if (!id) return false;
  if (state.self && id === state.self) {
    const was = state.selfHolds;
    state.selfHolds = true;
    return !was;
  }
  if (state.holders.has(id)) return false;
  const tr = document.createElement("tr");
  tr.className = "sp-table__row" + (isNew ? " sp-table__row--new" : "");
  const agency = h.agency || id;
  const cells = [
    ["Agency", agency],
    ["Kind of service", categoryLabel(h.category || h.kind || "")],
    ["Since", formatSince(h.since || h.registeredAt)],
  ];
  for (const [label, text] of cells) tr.append(cell(label, text));
  const td = cell("", "");
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

// addShielded adds a shielded service: not named, never counted among the
// agencies (nor as its broker's own record), asked through its broker.
function addShielded(h, isNew) {
  if (state.selfEntryKeys.has(h.entryKey)) {
    // This node's own entry, which names its broker: the agency's own.
    const was = state.selfHolds;
    state.selfHolds = true;
    return !was;
  }
  const id = holderID(h);
  if (state.shielded.has(id)) return false;
  const li = document.createElement("li");
  li.className = isNew ? "sp-table__row--new" : "";
  const p = document.createElement("p");
  p.className = "sp-body";
  p.textContent =
    "A service that protects its patients’ confidentiality also holds a record" +
    (formatSince(h.since) ? " (since " + formatSince(h.since) + ")" : "") +
    ". It is not named here; ask through " + h.brokerAgency + ", which passes your request on.";
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "sp-button sp-button--secondary sp-button--small";
  btn.textContent = "Ask through " + h.brokerAgency;
  const div = document.createElement("div");
  btn.addEventListener("click", () =>
    requestContact(id, h.brokerAgency, btn, div, { nodeId: h.broker, entryKey: h.entryKey, shield: h.shield }),
  );
  div.append(btn);
  li.append(p, div);
  $("results-shielded").append(li);
  state.shielded.set(id, li);
  return true;
}

// Buttons that stay on the page while they cannot be used are marked
// aria-disabled rather than disabled: a disabled button loses focus, and a
// keyboard user's place with it.
function busy(btn) {
  return btn.getAttribute("aria-disabled") === "true";
}

// requestContact asks the holder id (a node id, or for a shielded service
// its key in the page's maps, with via: its broker, entry key and shield)
// for contact.
async function requestContact(id, agency, btn, cell, via) {
  if (busy(btn)) return;
  btn.setAttribute("aria-disabled", "true");
  const search = state.search;
  try {
    const last4 = state.display.replace(/[^0-9]/g, "").slice(-4);
    const body = { nodeId: id, purpose: state.purpose, lookupKey: state.holderKeys.get(id) || state.keys.lookupKey };
    if (via) Object.assign(body, via);
    const ans = await call("POST", api.contact, body);
    if (ans && ans.id) saveLabel(ans.id, last4);
    loadContacts();
    if (search !== state.search) return; // the results it was for are gone
    const p = document.createElement("p");
    p.className = "sp-body sp-answer";
    p.tabIndex = -1;
    p.textContent =
      ans.status === "accepted"
        ? "Contact: " + (ans.contact || agency)
        : via
          ? "Request sent through " + agency + ". The service decides whether to tell you who it is."
          : "Request sent. " + agency + " will get back to you.";
    // The answer replaces the button: if the button had focus, the answer
    // takes it, so a keyboard user carries on from the same row.
    const hadFocus = document.activeElement === btn;
    cell.replaceChildren(p);
    if (hadFocus) p.focus();
    if (ans.id && ans.status !== "accepted") state.answerCells.set(ans.id, p);
    notice("Contact request", (via ? "Sent through " : "Sent to ") + agency + ". The answer will appear under My contact requests.");
  } catch (e) {
    btn.removeAttribute("aria-disabled");
    if (search === state.search) showSummary([{ message: e.message }]);
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

// onInvolved handles a live "involved" notice: the new holder comes from
// the notice (opened here, or named by the node) or, failing both, from a
// fresh lookup, which at least updates the count.
// openNotice opens an "involved" notice's entry with whichever key of the
// search it was sealed under; null when the module cannot open entries.
function openNotice(n) {
  if (!n.entry) return [];
  let opened = null;
  for (const keys of state.keySets) {
    opened = engine.openEntries(keys, [n.entry], state.members);
    if (opened === null || opened.length > 0) return opened;
  }
  return opened;
}

async function onInvolved(n) {
  const search = state.search;
  if (!state.keys) return;
  let holders = n.holder ? [n.holder] : openNotice(n);
  let unshown = 0;
  if (!holders || holders.length === 0) {
    try {
      const found = await lookup();
      if (search !== state.search) return; // the results it was for are gone
      state.members = found.members || state.members;
      holders = found.holders;
      unshown = found.unshown;
    } catch {
      holders = [];
    }
  }
  let added = 0;
  for (const h of holders) {
    if (addHolder(h, true)) {
      added++;
      const mine = (state.self && (h.nodeId || h.holder) === state.self) || (h.shielded && state.selfEntryKeys.has(h.entryKey));
      const who = h.shielded ? "A service that protects its patients’ confidentiality" : h.agency || h.nodeId;
      notice("New", mine ? "Your agency now holds a record." : who + " is now involved.");
    }
  }
  if (!added) notice("New", "Another agency is now involved.");
  updateSummary(unshown);
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
  startStoredWatch();
  const ws = new WebSocket(watchURL());
  state.socket = ws;
  const btn = $("watch-button");
  btn.setAttribute("aria-disabled", "true");
  // Every lookup key of the search is watched (one per key in force).
  ws.onopen = () => {
    for (const keys of state.keySets) ws.send(JSON.stringify({ watch: keys.lookupKey }));
  };
  let told = false;
  ws.onmessage = (m) => {
    let n;
    try {
      n = JSON.parse(m.data);
    } catch {
      return;
    }
    if (n.watchId) return; // a stored watch's notice: "My watches" shows it (the staff socket has it too)
    switch (n.type) {
      case "watching":
        if (told) break; // once, not once per key
        told = true;
        btn.textContent = "Watching: you will be told here";
        notice("Watching", "You will be told here if another agency becomes involved.");
        break;
      case "involved":
        onInvolved(n);
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
    btn.removeAttribute("aria-disabled");
    btn.textContent = "Tell me if anyone else becomes involved";
    notice("Stopped", "No longer watching. Select the button to watch again.");
  };
}

// ---------------------------------------------------------------------------
// Contact requests: the agency's inbox (received) and the user's own (sent).
// ---------------------------------------------------------------------------

// Labels: the last four digits of the number each sent request was about,
// by request id, in this browser's local storage (per user). The node does
// not know them; a request made elsewhere shows without one.
function labelsKey() {
  return "signpost.contactLabels." + (state.user ? state.user.name : "");
}

function labels() {
  try {
    const l = JSON.parse(localStorage.getItem(labelsKey()) || "{}");
    return l && typeof l === "object" ? l : {};
  } catch {
    return {};
  }
}

function saveLabels(l) {
  try {
    localStorage.setItem(labelsKey(), JSON.stringify(l));
  } catch {
    // storage full or refused: requests show without a label
  }
}

function saveLabel(id, last4) {
  if (!/^[0-9]{4}$/.test(last4)) return;
  const l = labels();
  l[id] = last4;
  saveLabels(l);
}

// loadContacts fetches both lists and shows them; the labels of requests the
// node no longer has (past their retention) are forgotten.
async function loadContacts() {
  const user = state.user;
  if (!user) return;
  let res;
  try {
    res = await call("GET", api.contact);
  } catch (e) {
    if (state.user === user) $("inbox-summary").textContent = "Contact requests could not be loaded: " + e.message;
    return;
  }
  if (state.user !== user) return;
  state.inbox.clear();
  state.sent.clear();
  state.relayed.clear();
  for (const v of res.received || []) state.inbox.set(v.id, v);
  for (const v of res.sent || []) state.sent.set(v.id, v);
  for (const v of res.relayed || []) state.relayed.set(v.id, v);
  const l = labels();
  let pruned = false;
  for (const id of Object.keys(l)) {
    if (!state.sent.has(id)) {
      delete l[id];
      pruned = true;
    }
  }
  if (pruned) saveLabels(l);
  renderList("received");
  renderList("sent");
  renderRelayed();
}

// renderRelayed lists the requests this node passed on as a broker, newest
// first; the section shows only when there are some. The node does not
// say which service each went to.
function renderRelayed() {
  const items = sorted(state.relayed);
  $("relayed").hidden = items.length === 0;
  $("relayed-list").replaceChildren(
    ...items.map((v) => {
      const agency = v.agency || v.nodeId;
      const li = card(v, "From " + agency);
      li.append(
        summaryList([
          ["Asked by", v.requester],
          ["Purpose", purposeLabel(v.purpose)],
          ["Asked", formatWhen(v.created)],
          ["Named the service", v.state === "answered" ? (v.consent ? "Yes" : "No") : ""],
          ["Passed back", { pending: "Not yet: " + agency + " cannot be reached; Signpost keeps trying.", delivered: "Yes", failed: "No: " + agency + " no longer has the request." }[v.delivery]],
        ]),
      );
      return li;
    }),
  );
  const waiting = items.filter((v) => v.state === "new").length;
  $("relayed-summary").textContent =
    waiting === 0
      ? "The services answered every request your agency passed on."
      : waiting === 1
        ? "1 request is waiting for the service’s answer."
        : waiting + " requests are waiting for the services’ answers.";
}

const stateWords = {
  new: ["Waiting for an answer", "sp-tag--grey"],
  answered: ["Answered", ""],
  declined: ["Declined", "sp-tag--red"],
};

function tag(st) {
  const [text, cls] = stateWords[st] || [st, "sp-tag--grey"];
  const t = document.createElement("strong");
  t.className = "sp-tag " + cls;
  t.textContent = text;
  return t;
}

function summaryList(rows) {
  const dl = document.createElement("dl");
  dl.className = "sp-summary";
  for (const [k, v] of rows) {
    if (!v) continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  return dl;
}

function sorted(map) {
  return [...map.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? -1 : 1));
}

// renderList draws the inbox ("received") or the user's own ("sent"),
// newest first, keeping a card whose form is in use as it is.
function renderList(side) {
  const inbox = side === "received";
  const list = $(inbox ? "inbox-list" : "mine-list");
  const items = sorted(inbox ? state.inbox : state.sent);
  const keep = new Map();
  for (const li of list.children) keep.set(li.dataset.id, li);
  const cards = items.map((v) => {
    const old = keep.get(v.id);
    if (old && old.dataset.version === v.state + "|" + (v.delivery || "")) return old;
    return inbox ? inboxCard(v) : mineCard(v);
  });
  list.replaceChildren(...cards);
  const waiting = items.filter((v) => v.state === "new").length;
  let text;
  if (inbox) {
    text =
      items.length === 0
        ? "No other agency has asked your agency for contact."
        : waiting === 0
          ? "Every request has been answered or declined."
          : waiting === 1
            ? "1 request is waiting for an answer."
            : waiting + " requests are waiting for an answer.";
  } else {
    text =
      items.length === 0
        ? "You have not asked another agency for contact."
        : waiting === 0
          ? "Every agency you asked has answered."
          : waiting === 1
            ? "1 request is waiting for the other agency’s answer."
            : waiting + " requests are waiting for the other agencies’ answers.";
  }
  $(inbox ? "inbox-summary" : "mine-summary").textContent = text;
}

function card(v, heading) {
  const li = document.createElement("li");
  li.className = "sp-request";
  li.dataset.id = v.id;
  li.dataset.version = v.state + "|" + (v.delivery || "");
  const h = document.createElement("h3");
  h.className = "sp-heading-s";
  h.id = "req-" + v.id;
  h.tabIndex = -1;
  h.textContent = heading;
  const p = document.createElement("p");
  p.className = "sp-body";
  p.append(tag(v.state));
  li.append(h, p);
  return li;
}

function decisionText(v) {
  if (v.state === "answered") return v.contact || "";
  if (v.state === "declined") return v.reason || "";
  return "";
}

function inboxCard(v) {
  const agency = v.agency || v.nodeId;
  const li = card(v, "From " + agency);
  li.append(
    summaryList([
      ["Through", v.via ? v.via + " (your broker). " + agency + " does not know which service you are unless you say so." : ""],
      ["Asked by", v.requester],
      ["Your record", v.localId],
      ["Purpose", purposeLabel(v.purpose)],
      ["Asked", formatWhen(v.created)],
      ["Message", v.message],
      [v.state === "declined" ? "Reason" : "Contact given", decisionText(v)],
      ["Named your agency", v.via && v.state === "answered" ? (v.consent ? "Yes" : "No") : ""],
      ["Decided by", v.decidedBy === "policy" ? "Your agency’s policy (the duty contact)" : v.decidedBy],
      ["Sent back", { pending: "Not yet: " + agency + " cannot be reached; Signpost keeps trying.", delivered: "Yes", failed: "No: " + agency + " no longer has the request." }[v.delivery]],
    ]),
  );
  if (v.state === "new") {
    li.append(decideForm(v, "answer"));
    const det = document.createElement("details");
    det.className = "sp-details";
    const sum = document.createElement("summary");
    sum.textContent = "Decline this request";
    det.append(sum, decideForm(v, "decline"));
    li.append(det);
  }
  return li;
}

// decideForm is the form that answers a received request with a named
// contact, or declines it with a reason.
function decideForm(v, kind) {
  const agency = v.agency || v.nodeId;
  const field = kind + "-" + v.id;
  const form = document.createElement("form");
  form.noValidate = true;
  const group = document.createElement("div");
  group.className = "sp-form-group";
  group.id = field + "-group";
  const label = document.createElement("label");
  label.className = "sp-label";
  label.htmlFor = field;
  label.textContent =
    kind === "answer" ? (v.via ? "What should " + agency + " be told?" : "Who should " + agency + " contact?") : "Why are you declining?";
  const hint = document.createElement("p");
  hint.className = "sp-hint";
  hint.id = field + "-hint";
  hint.textContent =
    kind === "answer"
      ? v.via
        ? "It reaches them through " + v.via + ". Unless you tick the box below, it does not say which service you are: do not name your service in it."
        : "A named person: their name, role, and phone number or email."
      : "The other agency sees this reason. Do not include details of the person’s record.";
  const err = document.createElement("p");
  err.className = "sp-error-message";
  err.id = field + "-error";
  err.hidden = true;
  const input = document.createElement("input");
  input.className = "sp-input";
  input.id = field;
  input.type = "text";
  input.autocomplete = "off";
  input.maxLength = kind === "answer" ? 300 : 500;
  input.setAttribute("aria-describedby", hint.id + " " + err.id);
  group.append(label, hint, err, input);
  form.append(group);
  if (kind === "answer" && v.via) {
    // Consent to be named: a person's decision, off by default.
    const box = document.createElement("div");
    box.className = "sp-checkbox";
    const cb = document.createElement("input");
    cb.type = "checkbox";
    cb.id = "consent-" + v.id;
    const cl = document.createElement("label");
    cl.className = "sp-label";
    cl.htmlFor = cb.id;
    cl.textContent = "Tell " + agency + " that this answer comes from your agency";
    box.append(cb, cl);
    form.append(box);
  }
  const btn = document.createElement("button");
  btn.type = "submit";
  btn.className = kind === "answer" ? "sp-button" : "sp-button sp-button--secondary";
  btn.textContent = kind === "answer" ? "Send answer" : "Decline request";
  const hidden = document.createElement("span");
  hidden.className = "sp-visually-hidden";
  hidden.textContent = (kind === "answer" ? " to " : " from ") + agency;
  btn.append(hidden);
  form.append(btn);
  form.addEventListener("submit", (ev) => onDecide(ev, v, kind, btn));
  return form;
}

async function onDecide(ev, v, kind, btn) {
  ev.preventDefault();
  if (busy(btn)) return;
  const field = kind + "-" + v.id;
  const text = $(field).value.trim();
  if (!text) {
    const message = kind === "answer" ? "Enter the name and details of the person they should contact" : "Enter why you are declining the request";
    setFieldError(field, message);
    return showSummary([{ inputId: field, message }]);
  }
  setFieldError(field, "");
  showSummary([]);
  btn.setAttribute("aria-disabled", "true");
  try {
    // Through a broker, the answer says whether the agency consents to be
    // named (the box, off by default).
    const body = kind === "answer" ? { contact: text } : { reason: text };
    if (kind === "answer" && v.via) body.consent = $("consent-" + v.id).checked;
    const got = await call("POST", api.contact + "/" + encodeURIComponent(v.id) + "/" + kind, body);
    state.inbox.set(got.id, got);
    renderList("received");
    const agency = got.via || got.agency || got.nodeId;
    setStatus(
      (kind === "answer" ? "Your answer was " : "Your decline was ") +
        (got.delivery === "delivered" ? "sent to " + agency + "." : "saved; " + agency + " cannot be reached now, and Signpost keeps trying."),
    );
    const h = $("req-" + got.id);
    if (h) h.focus();
  } catch (e) {
    btn.removeAttribute("aria-disabled");
    if (e.code === "contact_request_decided") loadContacts();
    let message = e.message;
    if (e.code === "invalid_text") message = kind === "answer" ? "Enter the contact on one line, in at most 300 characters" : "Enter the reason on one line, in at most 500 characters";
    if (e.code === "contact_request_decided") message = "Someone at your agency has already dealt with this request";
    setFieldError(field, message);
    // A request someone else decided is shown again without its form: the
    // summary then links nowhere.
    showSummary([{ inputId: e.code === "contact_request_decided" ? "" : field, message }]);
  }
}

function mineCard(v) {
  const agency = v.agency || v.nodeId;
  const li = card(v, "To " + agency);
  const last4 = labels()[v.id];
  li.append(
    summaryList([
      ["Asked through", v.via || ""],
      ["About", last4 ? "NHS number ending " + last4 : ""],
      ["Purpose", purposeLabel(v.purpose)],
      ["Asked", formatWhen(v.created)],
      ["Message", v.message],
      [v.state === "declined" ? "Reason" : "Contact", decisionText(v)],
      ["Answered", v.state === "new" ? "" : formatWhen(v.updated)],
    ]),
  );
  return li;
}

// onContactNotice takes a live notice: a request to the agency (new, or
// decided by a colleague) or an answer to one of this user's.
function onContactNotice(n) {
  const v = n.contact;
  if (!v || !v.id) return;
  const agency = v.agency || v.nodeId;
  if (n.type === "contact-request" && v.direction === "relayed") {
    state.relayed.set(v.id, v);
    renderRelayed();
  } else if (n.type === "contact-request" && v.direction === "received") {
    const was = state.inbox.get(v.id);
    state.inbox.set(v.id, v);
    renderList("received");
    if (!was) setStatus("New contact request from " + agency + ".");
  } else if (n.type === "contact-answer" && v.direction === "sent") {
    state.sent.set(v.id, v);
    renderList("sent");
    const p = state.answerCells.get(v.id);
    if (p && p.isConnected) p.textContent = v.state === "declined" ? "Declined: " + (v.reason || "") : "Contact: " + (v.contact || agency);
    const who = agency.charAt(0).toUpperCase() + agency.slice(1); // a shielded service's is a sentence
    setStatus(who + (v.state === "declined" ? " declined your contact request." : " answered your contact request."));
  }
}

function watchURL() {
  const url = new URL(api.watch, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

// openStaff opens the staff socket (no keys: it carries the contact
// notices) and keeps it open while the user is signed in, reconnecting
// with back-off (the node closes an idle socket) and catching up on what
// was missed meanwhile.
function openStaff() {
  if (state.staff || !state.user) return;
  clearTimeout(state.staffTimer);
  const ws = new WebSocket(watchURL());
  state.staff = ws;
  ws.onopen = () => {
    if (state.staffTries > 0) {
      loadContacts();
      loadWatches();
    }
    state.staffTries = 0;
  };
  ws.onmessage = (m) => {
    let n;
    try {
      n = JSON.parse(m.data);
    } catch {
      return;
    }
    if (n.type === "contact-request" || n.type === "contact-answer") onContactNotice(n);
    if (n.watchId) onStoredNotice(n);
  };
  ws.onclose = () => {
    state.staff = null;
    if (!state.user) return;
    const wait = Math.min(60, 2 ** state.staffTries) * 1000;
    state.staffTries++;
    state.staffTimer = setTimeout(openStaff, wait);
  };
}

function closeStaff() {
  clearTimeout(state.staffTimer);
  state.staffTries = 0;
  if (state.staff) {
    state.staff.onclose = null;
    state.staff.close();
    state.staff = null;
  }
}

// ---------------------------------------------------------------------------
// My watches: watches the node keeps for this user (POST /v1/watches), with
// the notices stored while no page was open.
// ---------------------------------------------------------------------------

// The last four digits of the number each watch is about, by watch id, in
// this browser's local storage (per user); never sent to the node. A watch
// started in another browser shows without them.
function watchLabelsKey() {
  return "signpost.watchLabels." + (state.user ? state.user.name : "");
}

function watchLabels() {
  try {
    const l = JSON.parse(localStorage.getItem(watchLabelsKey()) || "{}");
    return l && typeof l === "object" ? l : {};
  } catch {
    return {};
  }
}

function saveWatchLabels(l) {
  try {
    localStorage.setItem(watchLabelsKey(), JSON.stringify(l));
  } catch {
    // storage full or refused: the watch shows without its digits
  }
}

function whom(id) {
  const last4 = watchLabels()[id];
  return last4 ? "NHS number ending " + last4 : "A person you searched for in another browser";
}

// startStoredWatch asks the node to keep watching the current search's
// person (every lookup key in force) for this user.
async function startStoredWatch() {
  const last4 = state.display.replace(/[^0-9]/g, "").slice(-4);
  const keys = state.keySets.map((k) => k.lookupKey);
  try {
    const w = await call("POST", api.watches, { purpose: state.purpose, lookupKeys: keys });
    if (w && w.id && /^[0-9]{4}$/.test(last4)) {
      const l = watchLabels();
      l[w.id] = last4;
      saveWatchLabels(l);
    }
    await loadWatches();
  } catch (e) {
    notice("Problem", "This watch could not be kept for when you return: " + e.message);
  }
}

// loadWatches fetches the user's watches and shows them; the digits of
// watches the node no longer has (stopped, or expired) are forgotten.
async function loadWatches() {
  const user = state.user;
  if (!user || user.role !== "practitioner") return;
  let res;
  try {
    res = await call("GET", api.watches);
  } catch (e) {
    if (state.user === user) $("watches-summary").textContent = "Your watches could not be loaded: " + e.message;
    return;
  }
  if (state.user !== user) return;
  state.watches = res.watches || [];
  const l = watchLabels();
  let pruned = false;
  for (const id of Object.keys(l)) {
    if (!state.watches.some((w) => w.id === id)) {
      delete l[id];
      pruned = true;
    }
  }
  if (pruned) saveWatchLabels(l);
  renderWatches();
}

const noticeWords = {
  involved: "Another agency became involved.",
  withdrawn: "An agency no longer holds a record.",
};

function renderWatches() {
  const list = $("watches-list");
  list.replaceChildren(...state.watches.map(watchCard));
  const n = state.watches.length;
  const unseen = state.watches.reduce((a, w) => a + (w.unseen || 0), 0);
  let text = n === 0 ? "You are not watching anyone. Search for a person and select “Tell me if anyone else becomes involved”." : n === 1 ? "You are watching 1 person." : "You are watching " + n + " people.";
  if (unseen > 0) text += unseen === 1 ? " 1 notice is new." : " " + unseen + " notices are new.";
  $("watches-summary").textContent = text;
}

function watchCard(w) {
  const li = document.createElement("li");
  li.className = "sp-request";
  li.dataset.id = w.id;
  const who = whom(w.id);
  const h = document.createElement("h3");
  h.className = "sp-heading-s";
  h.id = "watch-" + w.id;
  h.tabIndex = -1;
  h.textContent = who;
  const p = document.createElement("p");
  p.className = "sp-body";
  const t = document.createElement("strong");
  t.className = "sp-tag" + (w.unseen ? "" : " sp-tag--grey");
  t.textContent = w.unseen ? (w.unseen === 1 ? "1 new notice" : w.unseen + " new notices") : "No new notices";
  p.append(t);
  li.append(
    h,
    p,
    summaryList([
      ["Purpose", purposeLabel(w.purpose)],
      ["Started", formatWhen(w.started)],
      ["Ends", formatWhen(w.expires)],
    ]),
  );
  const notices = w.notices || [];
  if (notices.length > 0) {
    const hn = document.createElement("h4");
    hn.className = "sp-visually-hidden";
    hn.textContent = "Notices about " + who;
    const ul = document.createElement("ul");
    ul.className = "sp-watch-notices";
    for (const n of [...notices].reverse()) {
      const item = document.createElement("li");
      const when = document.createElement("time");
      when.dateTime = n.at;
      when.textContent = formatWhen(n.at);
      item.append(when, document.createTextNode(" — " + who + ": " + (noticeWords[n.type] || n.type)));
      if (!n.seen) {
        const tn = document.createElement("strong");
        tn.className = "sp-tag";
        tn.textContent = "New";
        item.prepend(tn);
      }
      ul.append(item);
    }
    li.append(hn, ul);
  } else {
    const none = document.createElement("p");
    none.className = "sp-body";
    none.textContent = "No agency has become involved or left since you started watching.";
    li.append(none);
  }
  const hidden = () => {
    const s = document.createElement("span");
    s.className = "sp-visually-hidden";
    s.textContent = " (" + who + ")";
    return s;
  };
  if (w.unseen) {
    const seen = document.createElement("button");
    seen.type = "button";
    seen.className = "sp-button sp-button--secondary";
    seen.textContent = "Mark notices as seen";
    seen.append(hidden());
    seen.addEventListener("click", () => onWatchSeen(w, seen));
    li.append(seen);
  }
  const stop = document.createElement("button");
  stop.type = "button";
  stop.className = "sp-button sp-button--secondary";
  stop.textContent = "Stop watching";
  stop.append(hidden());
  stop.addEventListener("click", () => onWatchStop(w, stop));
  li.append(stop);
  return li;
}

async function onWatchSeen(w, btn) {
  if (busy(btn)) return;
  btn.setAttribute("aria-disabled", "true");
  const seq = Math.max(0, ...(w.notices || []).map((n) => n.seq));
  try {
    await call("POST", api.watches + "/" + encodeURIComponent(w.id) + "/seen", { seq });
    await loadWatches();
    const h = $("watch-" + w.id);
    if (h) h.focus();
  } catch (e) {
    btn.removeAttribute("aria-disabled");
    showSummary([{ message: e.message }]);
  }
}

async function onWatchStop(w, btn) {
  if (busy(btn)) return;
  btn.setAttribute("aria-disabled", "true");
  const who = whom(w.id);
  try {
    await call("DELETE", api.watches + "/" + encodeURIComponent(w.id));
  } catch (e) {
    if (e.code !== "watch_not_found") {
      btn.removeAttribute("aria-disabled");
      return showSummary([{ message: e.message }]);
    }
  }
  await loadWatches();
  setStatus("You are no longer watching " + (who.startsWith("NHS") ? "the person with " + who : "that person") + ".");
  $("watches-title").focus();
}

// onStoredNotice takes a live notice of one of the user's watches.
function onStoredNotice(n) {
  loadWatches();
  setStatus(whom(n.watchId) + ": " + (noticeWords[n.type] || n.type));
}

// ---------------------------------------------------------------------------
// Subject access (auditors): who looked this person up?
// ---------------------------------------------------------------------------
const actionNames = {
  evaluate: "Token evaluation",
  "evaluate-request": "Token evaluation",
  lookup: "Looked up",
  locate: "Looked up",
  "contact-request": "Asked for contact",
  "contact-request-sent": "Asked for contact",
  "contact-request-received": "Contact request received",
  "contact-request-answered": "Answered a contact request",
  "contact-request-declined": "Declined a contact request",
  "contact-answer-sent": "Sent the answer to a contact request",
  "contact-answer-received": "Answer to a contact request received",
  "contact-request-expired": "Contact request deleted at the end of its retention",
  watch: "Asked to be told of new involvement",
  "watch-start": "Started watching for new involvement",
  "watch-stop": "Stopped watching",
  "watch-expire": "A watch ended at its expiry",
  "watch-seen": "Marked watch notices as seen",
  notify: "Told of new involvement",
  match: "Another agency became involved",
  "record-create": "Record added",
  "record-update": "Record changed",
  "record-delete": "Record removed",
  objection: "Objection recorded",
  "subject-access": "Subject-access search",
};

function formatWhen(s) {
  const d = new Date(s);
  if (isNaN(d)) return "";
  return d.toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
}

async function onSubjectAccess(ev) {
  ev.preventDefault();
  try {
    await engine.load();
  } catch {
    return showSummary([{ message: "The NHS number checker could not be loaded. Reload the page to try again." }]);
  }
  numberFields.sar.touched = true;
  const r = checkNumber("sar", true);
  if (!r || !r.ok) {
    return showSummary([{ inputId: "sar-number", message: (r && r.message) || "Enter a valid NHS number" }]);
  }
  showSummary([]);
  $("sar-button").disabled = true;
  setStatus("Searching the audit log…");
  try {
    const res = await call("POST", api.subjectAccess, { nhsNumber: r.canonical });
    showSubjectEvents(res.events || []);
    setStatus("");
  } catch (e) {
    setStatus("");
    showSummary([{ message: e.message }]);
  } finally {
    $("sar-button").disabled = false;
  }
}

function showSubjectEvents(events) {
  const body = $("sar-body");
  body.replaceChildren();
  for (const e of events) {
    const tr = document.createElement("tr");
    tr.className = "sp-table__row";
    const what = (actionNames[e.action] || e.action) + (e.count > 1 ? " (" + e.count + ")" : "");
    const cells = [
      ["When", formatWhen(e.time)],
      ["Who", e.actor || ""],
      ["What", what],
      ["Purpose", e.purpose ? purposeLabel(e.purpose) : ""],
      ["Other party", e.peer || e.record || ""],
      ["Outcome", e.outcome || ""],
    ];
    for (const [label, text] of cells) tr.append(cell(label, text));
    body.append(tr);
  }
  const n = events.length;
  $("sar-summary").textContent = n === 0 ? "This node's audit log has nothing about this person." : n === 1 ? "1 event concerns this person." : n + " events concern this person.";
  $("sar-table").hidden = n === 0;
  $("sar-results").hidden = false;
  $("sar-results-title").focus();
}

// ---------------------------------------------------------------------------
// Wiring.
// ---------------------------------------------------------------------------
async function main() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", onSignOut);
  $("search-form").addEventListener("submit", onSearch);
  $("watch-button").addEventListener("click", onWatch);
  $("nhs-number").addEventListener("input", clearResults);
  $("purpose").addEventListener("change", clearResults);
  $("sar-form").addEventListener("submit", onSubjectAccess);
  for (const [field, f] of Object.entries(numberFields)) {
    const el = $(f.input);
    el.addEventListener("input", () => checkNumber(field, false));
    el.addEventListener("blur", () => {
      if (el.value.trim()) {
        f.touched = true;
        checkNumber(field, false);
      }
    });
  }
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
