// Precompile the standard library a Pyodide page imports from: npm's pyodide ships
// python_stdlib.zip with sources only, so every page load compiled each module it imported
// (about 200 of them for a PyScript page: half its start-up). This rewrites the zip with Pyodide's
// own CPython (the pinned npm pyodide, in Node.js): every *.py becomes *.pyc (this Python's magic
// number, unchecked-hash flags: no source to check against), compiled with -X no_debug_ranges
// (no column ranges: a sourceless traceback has no line to mark) under the path the page imports
// it from, so tracebacks name the file and line. Everything else is kept as it is. Deflated, as
// the original. ./build.sh setup runs it on the laid-out copy; by hand:
//
//   node tools/stdlib_pyc.mjs PYODIDE_DIR      (rewrites PYODIDE_DIR/python_stdlib.zip in place)
//
// Prints one JSON line: the Python version, magic number, modules compiled, bytes before/after.
import { renameSync } from "node:fs";
import { resolve } from "node:path";

const [pyodideDir] = process.argv.slice(2);
if (!pyodideDir) {
  process.stderr.write("usage: node tools/stdlib_pyc.mjs PYODIDE_DIR\n");
  process.exit(2);
}
const dir = resolve(pyodideDir);
const { loadPyodide } = await import(resolve(dir, "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: dir + "/", args: ["-X", "no_debug_ranges"] });
pyodide.FS.mkdirTree("/host");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: dir }, "/host");
const report = pyodide.runPython(String.raw`
import importlib._bootstrap_external as ext, importlib.util, io, json, os, sys, zipfile

def _compile_stdlib(src_path, dst_path):
    # the archive the page imports from (sys.path), e.g. /lib/python314.zip: co_filename's prefix
    archive = next(p for p in sys.path if p.endswith(".zip"))
    out, compiled, kept = io.BytesIO(), 0, 0
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".py"):
                try:
                    code = compile(data, archive + "/" + info.filename, "exec", dont_inherit=True)
                except SyntaxError:  # a test fixture that is not Python: left as it was
                    dst.writestr(info.filename, data); kept += 1; continue
                pyc = ext._code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)
                dst.writestr(info.filename + "c", bytes(pyc)); compiled += 1
            else:
                dst.writestr(info.filename, data)
    with open(dst_path, "wb") as f:
        f.write(out.getvalue())
    return {"python": sys.version.split()[0], "magic": ext.MAGIC_NUMBER.hex(), "compiled": compiled,
            "left_as_source": kept, "bytes_before": os.path.getsize(src_path), "bytes_after": len(out.getvalue())}

json.dumps(_compile_stdlib("/host/python_stdlib.zip", "/host/python_stdlib.zip.tmp"))
`);
pyodide.FS.unmount("/host");
renameSync(resolve(dir, "python_stdlib.zip.tmp"), resolve(dir, "python_stdlib.zip"));
process.stdout.write(report + "\n");
process.exit(0);
