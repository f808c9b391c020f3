// The receipt page's own check, in the donor's browser: nothing the portal says is taken on its word.
//
// The kiosk's QR link carries the kiosk's ledger key id in its fragment (/r/CODE#k=KEYID); a fragment is
// never sent to the server. This script fetches /api/v1/receipts/CODE and checks, with WebCrypto only:
//   0. the entry body and signature served give the CODE in the page's own address (the code the donor
//      holds): BASE32(SHA-256("civic-kiosk-receipt/v1" || 0x00 || signature || body)[:16]), as
//      server_sync/wire/receipt.py receipt_code_of. Otherwise a portal could answer one donor's code
//      with another gift's genuine receipt from the same kiosk, and every step below would hold;
//   1. the public key in the answer hashes to that key id (SHA-256, first 8 bytes);
//   2. the entry body hashes to the leaf (SHA-256 of 0x00 || body) and the entry signature over the
//      leaf is that key's (Ed25519);
//   3. the body is a donation of that kiosk, at that seq, under that key id;
//   4. the checkpoint note (C2SP signed note) is signed by the same key, for that kiosk's log;
//   5. the inclusion proof takes the leaf to the checkpoint's root (RFC 9162 §2.1.3.2);
// and then shows the amount, project and time from the signed body itself, never the portal's copy.
// The same steps, in Python: server_sync/wire/receipt.py check_receipt and `kiosk receipt verify`.
"use strict";

(function () {
  const root = document.getElementById("receipt");
  if (!root) return;
  const T = root.dataset; // the page's words, in its language (gettext, server_sync/locale)
  const enc = new TextEncoder();

  function hex(bytes) {
    return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function unhex(s) {
    if (typeof s !== "string" || s.length % 2 || /[^0-9a-f]/i.test(s)) throw new Error("not hex");
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
    return out;
  }
  function unb64(s) {
    if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4) throw new Error("not base64");
    const bin = atob(s);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function same(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }
  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }
  // RFC 4648 base32 without padding, as Python's base64.b32encode(...).rstrip("=").
  const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  function base32(bytes) {
    let out = "", acc = 0, bits = 0;
    for (const b of bytes) {
      acc = (acc << 8) | b; bits += 8;
      while (bits >= 5) { out += B32[(acc >>> (bits - 5)) & 31]; bits -= 5; }
      acc &= (1 << bits) - 1;
    }
    if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
    return out;
  }
  const CODE_DOMAIN = enc.encode("civic-kiosk-receipt/v1\0");
  async function receiptCode(body, sig) {
    return base32((await sha256(CODE_DOMAIN, sig, body)).slice(0, 16));
  }
  // The code the donor holds: the one in the address they opened (the QR's /r/CODE), never the
  // portal's label for it. Case does not matter, as at the portal (server_sync/wire/receipt.py normalise).
  function linkCode() {
    const m = /\/r\/([^/]+)$/.exec(location.pathname);
    let c = null;
    try {
      c = m ? decodeURIComponent(m[1]).trim().toUpperCase() : null;
    } catch (e) {
      return null;
    }
    return c && /^[A-Z2-7]{26}$/.test(c) ? c : null;
  }

  async function node(left, right) {
    return sha256(Uint8Array.of(1), left, right);
  }

  // RFC 9162 §2.1.3.2, with plain arithmetic (sizes can pass 2**31, where JavaScript's bit operators stop).
  async function verifyInclusion(leaf, index, size, proof, rootHash) {
    if (!(index >= 0 && index < size)) return false;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        if (fn % 2 === 0) {
          while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && same(r, rootHash);
  }

  // A C2SP signed note: "origin\nsize\nbase64 root\n\n— name base64(keyid4 || sig64)\n".
  function parseNote(note) {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("no blank line");
    const text = note.slice(0, cut + 1);
    const lines = text.slice(0, -1).split("\n");
    if (lines.length !== 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("bad checkpoint text");
    const sigs = note.slice(cut + 2).split("\n").filter((l) => l !== "").map((l) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new Error("bad signature line");
      const raw = unb64(m[2]);
      if (raw.length !== 68) throw new Error("bad signature length");
      return { name: m[1], keyId: raw.slice(0, 4), sig: raw.slice(4) };
    });
    const rootHash = unb64(lines[2]);
    if (rootHash.length !== 32) throw new Error("bad root");
    return { text, origin: lines[0], size: Number(lines[1]), root: rootHash, sigs };
  }

  async function ed25519(pubRaw) {
    return crypto.subtle.importKey("raw", pubRaw, { name: "Ed25519" }, false, ["verify"]);
  }
  async function edVerify(key, sig, data) {
    try {
      return await crypto.subtle.verify({ name: "Ed25519" }, key, sig, data);
    } catch (e) {
      return false;
    }
  }

  // One key_change entry: {raw, key, seq} of the key it hands over to, or null if it does not hold.
  async function keyChange(kc, signer, signerRaw, after, kiosk, note) {
    let body, sig, proof, obj, raw;
    try {
      body = unb64(kc.entry_body);
      sig = unhex(kc.entry_signature);
      proof = kc.proof.map(unhex);
      obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
      raw = unhex(obj.data.public_key);
    } catch (e) {
      return null;
    }
    if (obj.type !== "key_change" || obj.kiosk !== kiosk || !Number.isSafeInteger(obj.seq) || obj.seq <= after ||
        raw.length !== 32 || obj.data.vouched_by !== "previous_key" ||
        obj.key_id !== hex((await sha256(signerRaw)).slice(0, 8))) {
      return null;
    }
    const leaf = await sha256(Uint8Array.of(0), body);
    if (!(await edVerify(signer, sig, leaf))) return null;
    if (!(await verifyInclusion(leaf, obj.seq - 1, note.size, proof, note.root))) return null;
    try {
      return { raw, key: await ed25519(raw), seq: obj.seq };
    } catch (e) {
      return null;
    }
  }

  // Every step, in order; the first that fails ends the check. Returns {ok, steps, body}.
  async function check(doc, keyId, code) {
    const steps = [];
    const step = (ok, label) => { steps.push({ ok, label }); return ok; };
    const fail = (label) => { step(false, label); return { ok: false, steps, body: null }; };
    let v, body, sig, pubRaw, proof, shown;
    try {
      v = doc.verification;
      shown = doc.donation;
      body = unb64(v.entry_body);
      sig = unhex(v.entry_signature);
      pubRaw = unhex(v.public_key);
      proof = v.proof.map(unhex);
      if (typeof v.checkpoint !== "string" || !Number.isSafeInteger(v.seq)) throw new Error("fields");
    } catch (e) {
      return fail(T.stepMissing);
    }
    if (!code || (await receiptCode(body, sig)) !== code) return fail(T.stepCode);
    step(true, T.stepCode);
    if (pubRaw.length !== 32 || sig.length !== 64) return fail(T.stepKey);
    const kid = hex((await sha256(pubRaw)).slice(0, 8));
    if (!keyId || kid !== keyId.toLowerCase()) return fail(T.stepKey + " (" + kid + ")");
    step(true, T.stepKey + " (" + kid + ")");
    let key;
    try {
      key = await ed25519(pubRaw);
    } catch (e) {
      // A browser without WebCrypto Ed25519 (Chrome before 137, Safari before 17): nothing was checked, so
      // nothing is wrong with the gift; the page says to open it in a newer browser.
      return { ...fail(T.stepNoCrypto), note: "nocrypto" };
    }
    const leaf = await sha256(Uint8Array.of(0), body);
    if (!(await edVerify(key, sig, leaf))) return fail(T.stepSignature);
    step(true, T.stepSignature);
    let obj;
    try {
      obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch (e) {
      return fail(T.stepBody);
    }
    if (!obj || obj.type !== "donation" || obj.seq !== v.seq || obj.key_id !== kid || !obj.data) {
      return fail(T.stepBody);
    }
    step(true, T.stepBody);
    let note;
    try {
      note = parseNote(v.checkpoint);
    } catch (e) {
      return fail(T.stepCheckpoint);
    }
    const origin = "civic-kiosk.ledger/" + obj.kiosk;
    if (note.origin !== origin) return fail(T.stepCheckpoint);
    if (!(await verifyInclusion(leaf, v.seq - 1, note.size, proof, note.root))) return fail(T.stepProof);
    step(true, T.stepProof);
    // A kiosk that re-keyed since: each key_change entry, signed by the key it replaces and in the same
    // signed tree, hands over to the next key; the checkpoint must be signed by the last one.
    let signerRaw = pubRaw, signer = key, after = obj.seq;
    for (const kc of v.key_changes || []) {
      const next = await keyChange(kc, signer, signerRaw, after, obj.kiosk, note);
      if (!next) return fail(T.stepKeyChange);
      step(true, T.stepKeyChange + " (seq " + next.seq + ")");
      signerRaw = next.raw; signer = next.key; after = next.seq;
    }
    const noteKeyId = (await sha256(enc.encode(origin + "\n"), Uint8Array.of(1), signerRaw)).slice(0, 4);
    const mine = note.sigs.find((s) => s.name === origin && same(s.keyId, noteKeyId));
    if (!mine || !(await edVerify(signer, mine.sig, enc.encode(note.text)))) return fail(T.stepCheckpoint);
    step(true, T.stepCheckpoint + " (" + note.size + ")");
    const d = obj.data;
    if (!shown || shown.amount_yen !== d.amount_yen || shown.project !== d.project || shown.seq !== obj.seq ||
        shown.kiosk_id !== obj.kiosk) {
      return fail(T.stepShown);
    }
    step(true, T.stepShown);
    return { ok: true, steps, body: obj, keyId: kid, root: hex(note.root), size: note.size };
  }

  function yen(n) {
    return "¥" + Number(n).toLocaleString("en-US");
  }
  // A moment in Japan time as the page's reader reads it, as the portal writes it (server_sync/pages.py when):
  // 「2026年12月7日 5:36」, "7 Dec 2026, 05:36"; and for <time datetime>, ISO 8601 "2026-12-07T05:36:00+09:00".
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function tokyo(ms) {
    const f = new Intl.DateTimeFormat("en-US", {
      timeZone: "Asia/Tokyo", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric",
      second: "numeric", hourCycle: "h23",
    });
    const p = {};
    for (const part of f.formatToParts(new Date(ms))) p[part.type] = Number(part.value);
    return p;
  }
  function two(n) {
    return String(n).padStart(2, "0");
  }
  function when(ms) {
    const t = tokyo(ms);
    if (document.documentElement.lang === "en") {
      return t.day + " " + MONTHS[t.month - 1] + " " + t.year + ", " + two(t.hour) + ":" + two(t.minute);
    }
    return t.year + "年" + t.month + "月" + t.day + "日 " + t.hour + ":" + two(t.minute);
  }
  function iso(ms) {
    const t = tokyo(ms);
    return t.year + "-" + two(t.month) + "-" + two(t.day) + "T" + two(t.hour) + ":" + two(t.minute) + ":" +
      two(t.second) + "+09:00";
  }
  function set(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  // The facts printed beside the verdict, written over with the verified ones: the kiosk and number the donor quotes
  // to the center, the amount, the project id, the key id computed from the public key and the root and size of the
  // signed checkpoint note. The server's HTML is the portal's word; a ✓ must never stand next to another kiosk,
  // number or root than the signed ones. Returns the names of the facts the portal's page had printed otherwise
  // (kiosk, seq, amount, project, key, root, size), in that order.
  function writeVerified(result) {
    const d = result.body.data;
    const differ = [];
    const put = (id, name, text) => {
      const el = document.getElementById(id);
      if (!el) return;
      if (el.textContent.trim() !== text) differ.push(name);
      el.textContent = text;
    };
    put("kiosk", "kiosk", String(result.body.kiosk));
    put("seq", "seq", String(result.body.seq));
    put("amount", "amount", yen(d.amount_yen));
    const proj = document.getElementById("project");
    // The project's title is the portal's label for the signed project id; the id is what was signed. The policy
    // area printed beside it is the portal's label for the other project: left out.
    if (proj && proj.dataset.projectId !== d.project) {
      differ.push("project");
      proj.textContent = d.project;
      const area = document.getElementById("area");
      if (area && area.parentElement) area.parentElement.hidden = true;
    }
    put("key-id", "key", result.keyId);
    put("root", "root", result.root);
    put("root-size", "size", String(result.size));
    const rootLine = document.getElementById("root-line");
    if (rootLine) rootLine.hidden = false;
    return differ;
  }

  // The mismatch line, in the donor's words: which facts the portal's page had printed otherwise (the plain words
  // are the template's data-* on #mismatch, in the page's language; "root" and "size" are one fact to a donor, the
  // summary of the kiosk's records), and whom to tell: a copy of the center's contact line that the "could not be
  // confirmed" advice carries (#center-contact; none while the center has not set one), with its ids renamed.
  function sayMismatch(mismatch, differ) {
    const W = mismatch.dataset;
    const words = [];
    for (const name of differ) {
      const w = name === "root" || name === "size" ? W.summary : W[name];
      if (w && !words.includes(w)) words.push(w);
    }
    let items;
    if (document.documentElement.lang === "en") {
      items = words.length > 1 ? words.slice(0, -1).join(", ") + " and " + words[words.length - 1] : words.join("");
    } else {
      items = words.join("、");
    }
    const at = document.getElementById("mismatch-items");
    if (at) at.textContent = items;
    const contact = document.getElementById("center-contact");
    const to = document.getElementById("mismatch-contact");
    if (to) {
      if (contact) {
        const copy = contact.cloneNode(true);
        copy.removeAttribute("id");
        for (const el of copy.querySelectorAll("[id]")) el.id = "mismatch-" + el.id;
        to.replaceChildren(copy);
      } else {
        to.replaceChildren();
      }
    }
  }

  function show(result, note) {
    const status = document.getElementById("check");
    status.className = result.ok ? "ok" : "bad";
    status.dataset.result = result.ok ? "ok" : (note || "failed");
    // A gift refunded since (the portal marks it voided: the page then carries T.okVoided) is never only
    // "confirmed": the signed record holds, and the page says the gift was canceled.
    status.textContent = result.ok ? "✓ " + (T.okVoided || T.ok)
      : note === "nokey" ? T.noKey : note === "pending" ? T.pending : note === "unreachable" ? T.unreachable
        : note === "nocrypto" ? T.noCrypto : "✗ " + T.bad;
    // Not loaded (no signal, the portal busy or rate-limited): nothing was checked, so the page says so and offers
    // to try again, instead of "could not be confirmed", which tells a donor something is wrong with the gift.
    if (note === "unreachable" || note === "nocrypto") status.className = "warn";
    document.getElementById("retry-box").hidden = note !== "unreachable";
    // A record that genuinely does not check: what to do next (keep the address, tell the center), not only "✗".
    document.getElementById("bad-help").hidden = status.dataset.result !== "failed";
    document.getElementById("no-crypto-help").hidden = note !== "nocrypto";
    document.getElementById("checked-note").hidden = !result.ok; // said only of a check that passed
    const list = document.getElementById("steps");
    list.replaceChildren(...result.steps.map((s) => {
      const li = document.createElement("li");
      li.className = s.ok ? "ok" : "bad";
      li.textContent = (s.ok ? "✓ " : "✗ ") + s.label;
      return li;
    }));
    const facts = document.getElementById("facts");
    const mismatch = document.getElementById("mismatch");
    if (mismatch) mismatch.hidden = true;
    if (result.ok) {
      const differ = writeVerified(result);
      // The gift is confirmed and every fact now shown is the signed one; that the portal's page had printed another
      // is said too (and which, for tests and the curious), since an honest portal never does.
      status.dataset.mismatch = differ.join(" ");
      if (mismatch) {
        if (differ.length) sayMismatch(mismatch, differ);
        mismatch.hidden = differ.length === 0;
      }
      if (result.body.clock_synced) {
        set("time", when(result.body.wall_ms));
        const time = document.getElementById("time");
        if (time) time.setAttribute("datetime", iso(result.body.wall_ms));
      }
      // The portal prints the note when the body it holds says the kiosk's clock was not set (receipt.html
      // #time-note, with or without the QR's key); the checked body has the last word on it.
      const note = document.getElementById("time-note");
      if (note) {
        note.textContent = " " + T.unsynced;
        note.hidden = !!result.body.clock_synced;
      } else if (!result.body.clock_synced) {
        set("time", document.getElementById("time").textContent + " " + T.unsynced);
      }
      facts.classList.remove("unverified");
    } else {
      facts.classList.add("unverified");
    }
  }

  async function run() {
    const keyId = new URLSearchParams(location.hash.slice(1)).get("k");
    if (!window.crypto || !crypto.subtle) {
      show({ ok: false, steps: [{ ok: false, label: T.stepNoCrypto }] }, "nocrypto");
      return;
    }
    const code = linkCode();
    let doc, r;
    try {
      r = await fetch("/api/v1/receipts/" + encodeURIComponent(code || root.dataset.code), { cache: "no-store" });
    } catch (e) {
      r = null; // no answer at all: offline, or the connection dropped
    }
    // 404: the portal says it has no such receipt (the page itself was found: it expired in between). Anything else
    // that is not an answer (no connection, 429, 5xx) checked nothing either way.
    if (!r || (!r.ok && r.status !== 404)) {
      show({ ok: false, steps: [] }, "unreachable");
      return;
    }
    try {
      if (!r.ok) throw new Error(String(r.status));
      doc = await r.json();
    } catch (e) {
      show({ ok: false, steps: [{ ok: false, label: T.stepMissing }] }, "failed");
      return;
    }
    if (doc.verification && doc.verification.status === "awaiting_checkpoint") {
      show({ ok: false, steps: [{ ok: false, label: T.pending }] }, "pending");
      return;
    }
    if (!keyId) {
      show({ ok: false, steps: [{ ok: false, label: T.stepKey }] }, "nokey");
      return;
    }
    let result;
    try {
      result = await check(doc, keyId, code);
    } catch (e) {
      result = { ok: false, steps: [{ ok: false, label: String(e) }] };
    }
    show(result, result.note);
  }

  // The language switch keeps the fragment (the key id), or the other language could not check.
  if (location.hash) {
    for (const a of document.querySelectorAll("a[hreflang]")) {
      if (a.getAttribute("href").startsWith("/r/")) a.setAttribute("href", a.getAttribute("href") + location.hash);
    }
  }

  document.getElementById("retry").addEventListener("click", () => {
    const status = document.getElementById("check");
    status.className = "muted";
    status.dataset.result = "";
    status.textContent = T.checking;
    document.getElementById("retry-box").hidden = true;
    document.getElementById("bad-help").hidden = true;
    document.getElementById("no-crypto-help").hidden = true;
    document.getElementById("mismatch").hidden = true;
    run();
  });

  run();
})();
