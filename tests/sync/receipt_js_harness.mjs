// Runs server_sync/static/receipt.js, unchanged, in Node (its WebCrypto has Ed25519 and SHA-256) with the least of
// a page around it: one JSON line in ({doc, path, hash}: the answer the "portal" serves and the page's address),
// one JSON line out ({result, amount, project}: what the page ended up saying). For property tests that serve many
// mutated receipt answers to the page's own check, faster than a browser per answer
// (tests/sync/test_review51_adversarial_receipts.py).
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import vm from "node:vm";

const script = new vm.Script(readFileSync(process.argv[2], "utf-8"));

function element(id) {
  const classes = new Set();
  return {
    id, dataset: {}, textContent: "", hidden: false, className: "", attributes: {},
    classList: { add: (c) => classes.add(c), remove: (c) => classes.delete(c) },
    setAttribute(k, v) { this.attributes[k] = v; }, getAttribute(k) { return this.attributes[k]; },
    removeAttribute(k) { delete this.attributes[k]; }, cloneNode() { return element(""); }, querySelectorAll: () => [],
    replaceChildren() {}, addEventListener() {},
  };
}

async function once(req) {
  const els = {};
  const get = (id) => (els[id] ||= element(id));
  get("receipt").dataset = { ok: "OK", okVoided: undefined, bad: "BAD", pending: "PENDING", unsynced: "(unsynced)" };
  get("project").dataset = { projectId: req.project_shown };
  get("project").textContent = req.project_shown;
  get("time").textContent = "portal-time";
  const document = {
    getElementById: get, createElement: () => element(""), querySelectorAll: () => [],
    documentElement: { lang: "ja" },
  };
  const fetch = async () => ({ ok: true, status: 200, json: async () => JSON.parse(req.doc) });
  const ctx = vm.createContext({
    document, location: { pathname: req.path, hash: req.hash }, fetch, crypto: globalThis.crypto,
    TextEncoder, TextDecoder, atob, Intl, URLSearchParams, Uint8Array, Array, Number, String, Math, JSON, Error,
    Promise, Object, Date, window: { crypto: globalThis.crypto },
  });
  script.runInContext(ctx);
  // The check's WebCrypto calls run on Node's thread pool: wait for its verdict (show() sets it), up to 10 s.
  const end = Date.now() + 10000;
  while (!get("check").dataset.result && Date.now() < end) await new Promise((r) => setTimeout(r, 0));
  return { result: get("check").dataset.result || "timeout", amount: get("amount").textContent,
           project: get("project").textContent };
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) process.stdout.write(JSON.stringify(await once(JSON.parse(line))) + "\n");
