/* textproj in the browser or node: the C runtime compiled to WebAssembly (textproj.wasm).
 *
 *   const clf = await Textproj.create(wasmBytes, modelBytes);  // node: require("./textproj.js")
 *   clf.top("I lost my card", 5);   // [{label, probability}, ...], most probable first
 *   clf.probabilities(text);        // Float32Array, one per label (clf.labels)
 *   Textproj.isBlank(text);         // empty or white space only (a page asks for a text)
 *
 * A JS string reaches C as UTF-8 from TextEncoder, which writes a lone surrogate as U+FFFD;
 * probabilitiesOfBytes takes UTF-8 bytes as they are. */
(function (root) {
  "use strict";
  const ERROR_BYTES = 248; // tp_error: int code, char message[240] (padded)

  async function create(wasm, model) {
    const { instance } = await WebAssembly.instantiate(wasm, {});
    const e = instance.exports;
    e._initialize();
    function allocate(bytes, what) { // a failed malloc is 0: writing there would corrupt C's heap
      const at = e.malloc(bytes);
      if (!at) throw new Error(`textproj: cannot allocate ${bytes} bytes for ${what}`);
      return at;
    }
    const heap = () => new Uint8Array(e.memory.buffer);
    const utf8 = new TextDecoder("utf-8");
    const bytes = new Uint8Array(model);
    const data = allocate(bytes.length, "the model"); // kept: the model reads its weights in place
    heap().set(bytes, data);
    const error = allocate(ERROR_BYTES, "an error message");
    const handle = e.tp_load(data, bytes.length, error);
    if (!handle) {
      const message = heap().subarray(error + 4, error + ERROR_BYTES);
      throw new Error("textproj: " + utf8.decode(message.subarray(0, message.indexOf(0))));
    }
    const n = e.tp_n_labels(handle);
    const lengthCell = allocate(4, "a length");
    const labels = [];
    const thresholds = [];
    for (let i = 0; i < n; i++) {
      const at = e.tp_label(handle, i, lengthCell);
      const length = new DataView(e.memory.buffer).getUint32(lengthCell, true);
      labels.push(utf8.decode(heap().slice(at, at + length)));
      thresholds.push(e.tp_threshold(handle, i));
    }
    const workspace = allocate(e.tp_workspace_bytes(handle), "the workspace");
    const probs = allocate(4 * n, "the probabilities");
    let text = 0;
    let capacity = 0;

    function probabilitiesOfBytes(encoded) {
      if (encoded.length > capacity) { // on failure the old buffer stays, for the next text
        const wanted = Math.max(encoded.length, 1024);
        const grown = allocate(wanted, `a text of ${encoded.length} bytes`);
        if (text) e.free(text);
        text = grown;
        capacity = wanted;
      }
      heap().set(encoded, text);
      if (e.tp_predict(handle, text, encoded.length, workspace, probs) < 0) {
        throw new Error("textproj: prediction failed");
      }
      return new Float32Array(e.memory.buffer.slice(probs, probs + 4 * n));
    }
    const encoder = new TextEncoder();
    const probabilities = (s) => probabilitiesOfBytes(encoder.encode(s));
    function top(s, k) {
      const p = probabilities(s);
      const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
      return order.slice(0, k).map((i) => ({ label: labels[i], probability: p[i] }));
    }
    return {
      labels, thresholds, multiLabel: !!e.tp_multi_label(handle),
      probabilities, probabilitiesOfBytes, top,
    };
  }

  // White space as Python's str.isspace() has it, the rule textproj predict uses for a blank
  // text (JS's trim() differs: it strips U+FEFF and keeps U+001C..U+001F and U+0085).
  const BLANK = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
  const isBlank = (s) => BLANK.test(s);

  const api = { create, isBlank };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.Textproj = api;
})(typeof self !== "undefined" ? self : this);
