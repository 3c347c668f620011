// Compile Python sources to bytecode with Pyodide's own CPython (the pinned npm pyodide, in
// Node.js), so the .pyc files match what a page running that Pyodide expects (magic number,
// cache tag). tools/pyc_wheel.py calls it; by hand:
//
//   node tools/compile_pyc.mjs PYODIDE_DIR TREE
//
// Every *.py under TREE (a host folder, as the files will sit in site-packages) gets
// __pycache__/<module>.<cache_tag>.pyc next to it, in PEP 552 unchecked-hash mode (an install
// gives the files new mtimes, so timestamp-based pycs would be ignored). co_filename is the
// path the file will have in that Pyodide's site-packages (importlib fixes it up anyway when a
// package is unpacked elsewhere). Prints one JSON line: the Python version, cache tag, magic
// number and the pyc files written (relative to TREE).
import { resolve } from "node:path";

const [pyodideDir, tree] = process.argv.slice(2);
if (!pyodideDir || !tree) {
  process.stderr.write("usage: node tools/compile_pyc.mjs PYODIDE_DIR TREE\n");
  process.exit(2);
}
const { loadPyodide } = await import(resolve(pyodideDir, "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: resolve(pyodideDir) + "/" });
pyodide.FS.mkdirTree("/tree");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: resolve(tree) }, "/tree");
pyodide.globals.set("TREE", "/tree");
const report = pyodide.runPython(String.raw`
import importlib.util, json, os, py_compile, sys, sysconfig

def _compile_tree(tree):
    purelib = "/" + os.path.normpath(sysconfig.get_paths()["purelib"]).lstrip("/")  # not "//lib/..."
    written = []
    for folder, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            source = os.path.join(folder, name)
            rel = os.path.relpath(source, tree)
            cfile = importlib.util.cache_from_source(source)
            py_compile.compile(source, cfile=cfile, dfile=os.path.join(purelib, rel), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            written.append(os.path.relpath(cfile, tree))
    return {"python": sys.version.split()[0], "cache_tag": sys.implementation.cache_tag,
            "magic": importlib.util.MAGIC_NUMBER.hex(), "purelib": purelib, "pycs": written}

json.dumps(_compile_tree(TREE))
`);
pyodide.FS.unmount("/tree");
process.stdout.write(report + "\n");
process.exit(0);
