// Node side of tests/test_c_runtime.py: textproj.js + textproj.wasm from an export directory
// (argv[2]); stdin is a JSON list of base64 UTF-8 texts; stdout a JSON list of probability lists.
const fs = require("fs");
const path = require("path");
const dir = process.argv[2];
const Textproj = require(path.join(dir, "textproj.js"));
(async () => {
  const clf = await Textproj.create(
    fs.readFileSync(path.join(dir, "textproj.wasm")), fs.readFileSync(path.join(dir, "model.tpn")));
  const texts = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = texts.map((t) => Array.from(clf.probabilitiesOfBytes(Buffer.from(t, "base64"))));
  process.stdout.write(JSON.stringify({ labels: clf.labels, probabilities: out }));
})();
