// Precompile the standard library a Pyodide page imports from: npm's pyodide ships
// python_stdlib.zip with sources only, so every page load compiled each module it imported
// (about 140 of them for a PyScript page: half its start-up). This rewrites the zip with Pyodide's
// own CPython (the pinned npm pyodide, in Node.js): every *.py becomes *.pyc (pyc_bytes of
// tools/pyc_compile.py: this Python's magic number, unchecked hash; annotations kept, the standard
// library reads them), compiled with -X no_debug_ranges
// (no column ranges: a sourceless traceback has no line to mark) under the path the page imports
// it from, so tracebacks name the file and line. Everything else is kept as it is. Deflated, as
// the original. ./build.sh setup runs it on the laid-out copy; by hand:
//
//   node tools/stdlib_pyc.mjs PYODIDE_DIR      (rewrites PYODIDE_DIR/python_stdlib.zip in place)
//
// Prints one JSON line: the Python version, magic number, modules compiled, bytes before/after.
import { readFileSync, renameSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [pyodideDir] = process.argv.slice(2);
if (!pyodideDir) {
  process.stderr.write("usage: node tools/stdlib_pyc.mjs PYODIDE_DIR\n");
  process.exit(2);
}
const dir = resolve(pyodideDir);
const here = dirname(fileURLToPath(import.meta.url));
const { loadPyodide } = await import(resolve(dir, "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: dir + "/", args: ["-X", "no_debug_ranges"] });
pyodide.FS.mkdirTree("/host");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: dir }, "/host");
pyodide.globals.set("COMPILER", readFileSync(resolve(here, "pyc_compile.py"), "utf8"));
const report = pyodide.runPython(String.raw`
import io, json, os, sys, zipfile

def _compile_stdlib(src_path, dst_path):
    tool = {"__name__": "pyc_compile"}
    exec(compile(COMPILER, "tools/pyc_compile.py", "exec"), tool)
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
                dst.writestr(info.filename + "c", tool["pyc_bytes"](code, data)); compiled += 1
            else:
                dst.writestr(info.filename, data)
    with open(dst_path, "wb") as f:
        f.write(out.getvalue())
    python = tool["report"]()
    return {"python": python["python"], "magic": python["magic"], "compiled": compiled,
            "left_as_source": kept, "bytes_before": os.path.getsize(src_path), "bytes_after": len(out.getvalue())}

json.dumps(_compile_stdlib("/host/python_stdlib.zip", "/host/python_stdlib.zip.tmp"))
`);
pyodide.FS.unmount("/host");
renameSync(resolve(dir, "python_stdlib.zip.tmp"), resolve(dir, "python_stdlib.zip"));
process.stdout.write(report + "\n");
process.exit(0);
