// Node side of tests/test_c_runtime.py::test_wasm_survives_a_failed_allocation: textproj.js from
// an export directory (argv[2]) over a wasm whose malloc fails above 32 MB, as a full heap does.
// Prints JSON: the top labels of probe texts before and after a 64 MB text, and its error.
const fs = require("fs");
const path = require("path");
const dir = process.argv[2];
const LIMIT = 32 << 20; // above the workspace (12 MB for the bundled model)
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async (bytes, imports) => {
  const { instance } = await instantiate(bytes, imports);
  const real = instance.exports;
  const malloc = (n) => (n > LIMIT ? 0 : real.malloc(n));
  return { instance: { exports: { ...real, malloc } } };
};
const Textproj = require(path.join(dir, "textproj.js"));
(async () => {
  const clf = await Textproj.create(
    fs.readFileSync(path.join(dir, "textproj.wasm")), fs.readFileSync(path.join(dir, "model.tpn")));
  const probes = ["I lost my card", "how do I top up", "x".repeat(5000)];
  const tops = () => probes.map((t) => clf.top(t, 1)[0].label);
  const before = tops();
  let error = null;
  try {
    clf.probabilities("y".repeat(2 * LIMIT));
  } catch (e) {
    error = String(e.message);
  }
  process.stdout.write(JSON.stringify({ before, error, after: tops() }));
})();
