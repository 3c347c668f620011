// Run a Python script under the pinned MicroPython (the same wasm PyScript's type="mpy" loads),
// in Node.js, with packages copied into its /lib (.py and .mpy files, subfolders too):
// node tools/mpy_run.mjs SCRIPT.py PKGDIR...
// The unit tests use it to prove the SDK's shared code runs on MicroPython, not only CPython.
import { readFileSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { loadMicroPython } = await import(
  join(root, "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"));
const [script, ...packages] = process.argv.slice(2);
const mp = await loadMicroPython({ stdout: (line) => process.stdout.write(line + "\n") });
for (const dir of ["/lib"]) { try { mp.FS.mkdir(dir) } catch (e) {} }
// a package folder's .py and .mpy files, and its subfolders (a MicroPython wheel's _mpy/)
const copy = (from, to) => {
  mp.FS.mkdir(to);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name !== "__pycache__") copy(join(from, entry.name), to + "/" + entry.name);
    else if (/\.m?py$/.test(entry.name)) mp.FS.writeFile(to + "/" + entry.name, readFileSync(join(from, entry.name)));
  }
};
for (const pkg of packages) copy(pkg, "/lib/" + basename(pkg));
try {
  await mp.runPythonAsync(readFileSync(script, "utf8"));
} catch (e) {
  process.stdout.write("MPY-ERROR " + e + "\n");
  process.exit(3);
}
process.exit(0);  // the SDK's sender and tab scanner keep timers alive: the script is done
