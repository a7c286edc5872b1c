// Signpost browser loader: loads signpost.wasm (the same module the node
// and command-line clients run through wazero) and exposes its operations to
// page scripts. Plain ES module, no bundler, no network beyond fetching the
// module from the same place as this file.
//
//   import { load } from "./signpost.js";
//   const sp = await load();
//   sp.validate("nhs", ["999 000 0018"]);        // [{valid, normalized, formatted, code, reason, ...}]
//   const b = sp.blind("nhs", ["9990000018"]);   // send b.blinded to the issuer
//   const toks = sp.finalize(b, issuerPublicKey, "safeguarding", 202611, evaluated, proof);
//   sp.openEntries(toks[0].sealKey, entries, [{nodeId, publicKey}]);
//                                               // [{ok, nodeId, broker, inner, category, registeredAt, withdrawn} | {ok: false, error}]
//
// Threshold tokens (a key per purpose and epoch, shared among issuers):
//
//   const tb = sp.blindThreshold("nhs", ["9990000018"]);  // send tb.blinded to the node
//   const toks = sp.combine(tb, keySet, partials);        // [{token, lookupKey, sealKey}]
//     keySet:   {purpose, epoch, t, groupKey, shares: [{index, nodeId, key}]}
//     partials: [{index, evaluated: [Uint8Array], proof}], as the node returns them
//
// Byte values are Uint8Arrays. Errors are SignpostError with a numeric
// status and a stable name (see wasm/internal/abi for the ABI).

import { WASI } from "./wasi.js";

export const ABI_VERSION = 1;

const OP = { validate: 1, blind: 2, finalize: 3, deriveKeys: 4, schemes: 5, openEntries: 6, blindVerifiable: 8, combine: 9 };

// Per-entry outcomes of openEntries (abi.Entry*).
export const ENTRY_STATUS = { 1: "malformed", 2: "seal_broken", 3: "unknown_holder", 4: "holder_signature" };

export const STATUS = {
  1: "malformed", 2: "unknown_op", 3: "unknown_scheme", 4: "invalid_purpose",
  5: "invalid_epoch", 6: "batch_size", 7: "invalid_number", 8: "encoding",
  9: "proof_invalid", 10: "public_key", 11: "mismatch", 12: "too_large", 13: "internal",
  14: "too_few_partials", 15: "key_set",
};

export class SignpostError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "SignpostError";
    this.status = status;
    this.code = STATUS[status] || "unknown";
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function asBytes(x) {
  if (x instanceof Uint8Array) return x;
  if (typeof x === "string") return enc.encode(x);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  throw new TypeError("expected a string or Uint8Array");
}

function uvarint(out, n) {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function encodeList(items) {
  const parts = items.map(asBytes);
  const head = [];
  uvarint(head, parts.length);
  let size = head.length;
  const lens = parts.map((p) => {
    const l = [];
    uvarint(l, p.length);
    size += l.length + p.length;
    return l;
  });
  const out = new Uint8Array(size);
  out.set(head, 0);
  let off = head.length;
  parts.forEach((p, i) => {
    out.set(lens[i], off);
    off += lens[i].length;
    out.set(p, off);
    off += p.length;
  });
  return out;
}

function decodeList(buf) {
  let off = 0;
  const read = () => {
    let n = 0, mul = 1, b;
    do {
      if (off >= buf.length) throw new SignpostError(1, "malformed response");
      b = buf[off++];
      n += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return n;
  };
  const count = read();
  const items = [];
  for (let i = 0; i < count; i++) {
    const len = read();
    if (off + len > buf.length) throw new SignpostError(1, "malformed response");
    items.push(buf.subarray(off, off + len));
    off += len;
  }
  if (off !== buf.length) throw new SignpostError(1, "malformed response");
  return items;
}

class Signpost {
  constructor(instance) {
    this.exports = instance.exports;
  }

  call(op, items) {
    const req = encodeList(items);
    const x = this.exports;
    const ptr = x.signpost_alloc(req.length);
    if (ptr === 0) throw new SignpostError(12, "request too large");
    new Uint8Array(x.memory.buffer, ptr >>> 0, req.length).set(req);
    const r = BigInt.asUintN(64, x.signpost_call(op, req.length));
    const at = Number(r >> 32n), len = Number(r & 0xffffffffn);
    const resp = new Uint8Array(x.memory.buffer, at, len).slice(); // copy: the buffer is reused
    if (resp.length === 0) throw new SignpostError(13, "empty response");
    if (resp[0] !== 0) throw new SignpostError(resp[0], dec.decode(resp.subarray(1)));
    return decodeList(resp.subarray(1));
  }

  schemes() {
    const it = this.call(OP.schemes, []);
    const out = [];
    for (let i = 0; i < it.length; i += 2) out.push({ name: dec.decode(it[i]), system: dec.decode(it[i + 1]) });
    return out;
  }

  validate(scheme, inputs) {
    const it = this.call(OP.validate, [scheme, ...inputs]);
    const system = dec.decode(it[0]);
    return inputs.map((input, i) => {
      const f = it.slice(1 + 6 * i, 7 + 6 * i).map((b) => dec.decode(b));
      const r = { input, valid: f[0] === "1", scheme, system };
      if (f[1]) r.normalized = f[1];
      if (f[2]) r.formatted = f[2];
      if (f[3]) r.code = f[3];
      if (f[4]) r.reason = f[4];
      if (f[5]) r.range = f[5];
      return r;
    });
  }

  blind(scheme, numbers) {
    const it = this.call(OP.blind, [scheme, ...numbers]);
    const blinds = [], blinded = [];
    for (let i = 0; i < numbers.length; i++) {
      blinds.push(it[2 * i].slice());
      blinded.push(it[2 * i + 1].slice());
    }
    return { scheme, numbers: [...numbers], blinds, blinded };
  }

  finalize(blinding, publicKey, purpose, epoch, evaluated, proof) {
    const n = blinding.numbers.length;
    if (evaluated.length !== n) throw new SignpostError(11, "evaluation count differs");
    const items = [blinding.scheme, purpose, String(epoch >>> 0), publicKey, proof];
    for (let i = 0; i < n; i++) items.push(blinding.numbers[i], blinding.blinds[i], evaluated[i]);
    const it = this.call(OP.finalize, items);
    const out = [];
    for (let i = 0; i < n; i++) {
      out.push({ token: it[3 * i].slice(), lookupKey: it[3 * i + 1].slice(), sealKey: it[3 * i + 2].slice() });
    }
    return out;
  }

  // blindThreshold validates and blinds numbers for the threshold token
  // function (VOPRF mode): the same shape as blind. Send blinded to the
  // node; keep the whole object for combine.
  blindThreshold(scheme, numbers) {
    const it = this.call(OP.blindVerifiable, [scheme, ...numbers]);
    const blinds = [], blinded = [];
    for (let i = 0; i < numbers.length; i++) {
      blinds.push(it[2 * i].slice());
      blinded.push(it[2 * i + 1].slice());
    }
    return { scheme, numbers: [...numbers], blinds, blinded };
  }

  // combine verifies the issuers' partial evaluations inside the module,
  // combines t valid ones, unblinds and finalises: [{token, lookupKey,
  // sealKey}] in the order of blinding.numbers. keySet is {purpose, epoch,
  // t, groupKey, shares: [{index, nodeId, key}]} (nodeId is not needed
  // here); partials is [{index, evaluated: [Uint8Array], proof}]. A partial
  // with a bad proof is skipped; fewer than t valid ones throw
  // SignpostError "too_few_partials", a bad key set "key_set".
  combine(blinding, keySet, partials) {
    const n = blinding.numbers.length;
    const ks = [keySet.purpose, String(keySet.epoch >>> 0), String(keySet.t), asBytes(keySet.groupKey)];
    for (const s of keySet.shares) ks.push(String(s.index), asBytes(s.key));
    const ps = partials.map((p) => encodeList([String(p.index), asBytes(p.proof), ...p.evaluated.map(asBytes)]));
    const items = [blinding.scheme, encodeList(ks), encodeList(ps)];
    for (let i = 0; i < n; i++) items.push(blinding.numbers[i], blinding.blinds[i]);
    const it = this.call(OP.combine, items);
    if (it.length !== 3 * n) throw new SignpostError(1, "malformed response");
    const out = [];
    for (let i = 0; i < n; i++) {
      out.push({ token: it[3 * i].slice(), lookupKey: it[3 * i + 1].slice(), sealKey: it[3 * i + 2].slice() });
    }
    return out;
  }

  // openEntries opens canonical locator entries (Uint8Arrays, as the node's
  // lookup returns them, base64-decoded) with the seal key, which never
  // leaves this page, and checks each holder node's signature against
  // members ([{nodeId, publicKey: Uint8Array(32)}], from the same lookup
  // answer). Per entry: {ok: true, nodeId, broker, category, registeredAt
  // (Unix seconds), withdrawn} or {ok: false, error}; a shielded entry has
  // nodeId "" and names its broker, and inner is the holder's identity
  // sealed to the broker (a contact request through the broker carries it) with error one of
  // ENTRY_STATUS; a caller drops failed entries and never shows them. The
  // entries' own signatures were checked by the node's store on accept.
  // Throws SignpostError for a bad call (seal key not 32 bytes, a member
  // with a malformed key, more than 4096 entries).
  openEntries(sealKey, entries, members) {
    const ms = [];
    for (const m of members || []) ms.push(m.nodeId, asBytes(m.publicKey));
    const it = this.call(OP.openEntries, [sealKey, encodeList(ms), ...entries]);
    if (it.length !== 5 * entries.length) throw new SignpostError(1, "malformed response");
    return entries.map((_, i) => {
      const [status, id, category, reg, flags] = it.slice(5 * i, 5 * i + 5);
      if (status.length !== 1) throw new SignpostError(1, "malformed response");
      if (status[0] !== 0) return { ok: false, error: ENTRY_STATUS[status[0]] || "unknown" };
      if (reg.length !== 8) throw new SignpostError(1, "malformed response");
      const seconds = Number(new DataView(reg.buffer, reg.byteOffset, 8).getBigInt64(0));
      const f = dec.decode(flags);
      const shielded = f.endsWith("s");
      return {
        ok: true, nodeId: shielded ? "" : dec.decode(id), broker: shielded ? dec.decode(id) : "",
        category: shielded ? "" : dec.decode(category), inner: shielded ? category.slice() : null,
        registeredAt: seconds, withdrawn: f.startsWith("1"),
      };
    });
  }

  deriveKeys(tokens) {
    const it = this.call(OP.deriveKeys, tokens);
    return tokens.map((_, i) => ({ lookupKey: it[2 * i].slice(), sealKey: it[2 * i + 1].slice() }));
  }
}

// load fetches, instantiates and initialises the module; url defaults to
// signpost.wasm next to this file.
export async function load(url = new URL("./signpost.wasm", import.meta.url)) {
  const wasi = new WASI();
  const imports = { wasi_snapshot_preview1: wasi.imports };
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`signpost: fetching the module failed: HTTP ${resp.status}`);
  let instance;
  if (WebAssembly.instantiateStreaming && resp.headers.get("Content-Type") === "application/wasm") {
    ({ instance } = await WebAssembly.instantiateStreaming(resp, imports));
  } else {
    ({ instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), imports));
  }
  wasi.start(instance);
  const v = instance.exports.signpost_abi_version();
  if (v !== ABI_VERSION) throw new Error(`signpost: module ABI ${v}, loader expects ${ABI_VERSION}`);
  return new Signpost(instance);
}
