// Package web is the practitioner page that a node serves: HTML, one
// stylesheet and one JavaScript module, embedded in the binary so nothing is
// fetched from a CDN. Package node serves [FS] at "/" and the shared wasm
// module and its loader at "/wasm/".
//
// The page signs in (POST /v1/session), checks an NHS number as it is typed
// and tokenises it in the browser through the shared wasm module — so on this
// path the number never reaches the server — looks up the resulting lookup
// key, and shows the other agencies involved (agency, kind, since) with
// "request contact" for each, then watches for new involvement over a
// WebSocket. Its own agency (the node serving the page, named as "self" in
// the lookup answer) is never among them: as POST /v1/locate leaves the
// caller's agency out of the holders and sets selfHolds, the page says
// apart "Your agency also holds a record" and offers no contact request. The
// seal key stays in the browser too: the wasm module opens the sealed
// entries there and checks each holder node's signature against the members
// that the lookup answer lists (engine.openEntries in app.js, the loader's
// openEntries); entries that fail are dropped, never shown. Only with an
// older module that cannot open entries does the page fall back to holders a
// node names, or else count the records.
//
// Contact requests have two lists on the page (GET /v1/contact-requests).
// "Contact requests to your agency" is the agency's inbox, for
// practitioners and operators: each request from another agency, with the
// agency's own record id, and, while it waits, a form to answer with a
// named person or, behind "Decline this request", to decline with a
// reason. "My contact requests" lists the practitioner's own, with the
// holder's answer. A practitioner's page keeps a second WebSocket open
// from sign-in (the staff socket, no keys), so a request arriving in the
// inbox, a colleague's decision and an answer to one of the user's own
// requests show at once; it reconnects with back-off and reloads the lists
// when it does. An operator's inbox is reloaded every 30 seconds instead.
// The node never says whom a sent request is about; the page keeps the
// last four digits of the number by request id in local storage, per user.
//
// An auditor gets instead a subject-access form ("who
// looked this person up?"), which sends the number to the node's
// /v1/audit/subject-access and lists the events; an operator a pointer to the
// API. The API paths and JSON shapes it assumes are listed at the
// top of static/app.js, in one object, so the node and the page can be kept
// in step in one place.
//
// The session answer (GET or POST /v1/session) names the agency whose node
// this is, which the header shows with the user, and the purposes this user
// may look up under; the page offers those and no other (a school
// authorised for safeguarding only is never offered "Direct care"), and no
// search at all without one. The page's labels — kinds of service
// (category slugs), purposes, and the wording of each reason the wasm
// module gives for refusing an NHS number (its stable codes, e.g.
// nhs.check_digit) — live in one place, the "Words" section of app.js. A
// refused number gets GOV.UK's "Enter a valid NHS number" and the reason in
// plain words (too short, too long, contains letters, not a valid number:
// check it against the record), never the digit that would make it valid.
// On a narrow screen (down to 320 px) the results and audit tables stack
// one block per row, so nothing scrolls sideways; browser_page_test.go
// checks each state at 320 px, 375 px and a desktop width, with axe-core
// (vendored under testdata/ for the tests only).
//
// Accessibility follows the GOV.UK Design System's patterns: every input has
// a label and hint tied by aria-describedby, errors appear inline and in an
// error summary (role=alert) that takes focus, live notices go to an
// aria-live region, and everything works from the keyboard
// (TestPageByKeyboard): a button that stays on the page while it cannot be
// used is aria-disabled, not disabled, so it keeps focus, and a contact
// answer takes the focus of the button it replaces. The stylesheet is
// our own, written in the design system's visual conventions; see
// static/NOTICE (the page's "Credits and licences" link) for credits and
// licences, the WebAssembly module's included.
package web
