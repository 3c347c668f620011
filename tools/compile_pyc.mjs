// Compile Python sources to bytecode with Pyodide's own CPython (the pinned npm pyodide, in
// Node.js), so the .pyc files match what a page running that Pyodide expects (magic number,
// cache tag). tools/pyc_wheel.py calls it; by hand:
//
//   node tools/compile_pyc.mjs PYODIDE_DIR TREE [KEPT_JSON]
//
// The *.py under TREE (a host folder holding one package, as it will sit in site-packages) get
// their bytecode written by tools/pyc_compile.py (run here, inside Pyodide): for the files
// KEPT_JSON names ({"pkg/__init__.py": "the text shipped"}) __pycache__/<module>.<cache_tag>.pyc,
// and for all the others one bundle, pkg/_bytecode.<cache_tag>.bin. Python runs with
// -X no_debug_ranges (no column ranges: a sourceless traceback has no line to mark). Prints one
// JSON line: the Python version, cache tag, magic number, site-packages, the files written
// (relative to TREE) and the modules the bundle holds, read back from it.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [pyodideDir, tree, keptJson] = process.argv.slice(2);
if (!pyodideDir || !tree) {
  process.stderr.write("usage: node tools/compile_pyc.mjs PYODIDE_DIR TREE [KEPT_JSON]\n");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const { loadPyodide } = await import(resolve(pyodideDir, "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: resolve(pyodideDir) + "/", args: ["-X", "no_debug_ranges"] });
pyodide.FS.mkdirTree("/tree");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: resolve(tree) }, "/tree");
pyodide.globals.set("TREE", "/tree");
pyodide.globals.set("KEPT", keptJson ? readFileSync(keptJson, "utf8") : "{}");
pyodide.globals.set("COMPILER", readFileSync(resolve(here, "pyc_compile.py"), "utf8"));
const report = pyodide.runPython(String.raw`
import json, marshal, os

def _compile_tree(tree, kept):
    tool = {"__name__": "pyc_compile"}
    exec(compile(COMPILER, "tools/pyc_compile.py", "exec"), tool)
    files = {}
    for folder, dirs, names in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, tree)] = f.read()
    report = tool["report"]()
    pycs = tool["compile_files"](files, {k: v.encode() for k, v in kept.items()})
    for name, data in pycs.items():
        os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
        with open(os.path.join(tree, name), "wb") as f:
            f.write(data)
    bundle = tool["bundle_path"](sorted(files)[0].partition("/")[0], report["cache_tag"])
    return {**report, "pycs": sorted(pycs), "bundled": sorted(marshal.loads(pycs[bundle][4:]))}

json.dumps(_compile_tree(TREE, json.loads(KEPT)))
`);
pyodide.FS.unmount("/tree");
process.stdout.write(report + "\n");
process.exit(0);
