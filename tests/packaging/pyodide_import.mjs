// The Pyodide wheel in the pinned Pyodide, in Node.js (tests/packaging/test_pyc_wheel.py):
//
//   node tests/packaging/pyodide_import.mjs PYODIDE_DIR WHEEL
//
// Unpacks WHEEL into site-packages (as loadPackage does), then imports empmix_web twice, with
// SourceLoader.source_to_code watched (importlib calls it only when no usable pyc exists): as
// this Python (every module of the package, and validation.check_str(123, ...), whose TypeError
// gives the frame; init needs a browser: tests/browser/test_bytecode.py), and posing as one with
// another magic number (the guard's ImportError).
// Prints one JSON line: {"own": ..., "posed": ...}, each with what was compiled, each module's
// loader, the ImportError's message if any, and the traceback's last frame.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const [pyodideDir, wheel] = process.argv.slice(2);
const { loadPyodide } = await import(resolve(pyodideDir, "pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: resolve(pyodideDir) + "/" });
pyodide.FS.writeFile("/tmp/wheel.whl", readFileSync(wheel));
const result = pyodide.runPython(String.raw`
import json, sys, sysconfig, traceback, zipfile
import importlib._bootstrap_external as ext

zipfile.ZipFile("/tmp/wheel.whl").extractall(sysconfig.get_paths()["purelib"])

def fresh_import(magic):
    for name in [m for m in sys.modules if m.split(".")[0] == "empmix_web"]:
        del sys.modules[name]
    compiled, to_code, own_magic = [], ext.SourceLoader.source_to_code, ext.MAGIC_NUMBER
    def watched(self, data, path, *args, **kwargs):
        compiled.append(str(path).split("site-packages/")[-1])
        return to_code(self, data, path, *args, **kwargs)
    ext.SourceLoader.source_to_code, ext.MAGIC_NUMBER = watched, magic or own_magic
    refused = frame = None
    try:
        import empmix_web
        names = zipfile.ZipFile("/tmp/wheel.whl").namelist()
        bundled = [n for n in names if n.startswith("empmix_web/_bytecode.")]
        import marshal
        for name in marshal.loads(open(empmix_web.__path__[0] + "/" + bundled[0].split("/")[1], "rb").read()[4:]):
            __import__(name)
        try:
            empmix_web.validation.check_str(123, "event")
        except TypeError as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
    except ImportError as exc:
        refused = str(exc)
    finally:
        ext.SourceLoader.source_to_code, ext.MAGIC_NUMBER = to_code, own_magic
    loaders = {n: getattr(m.__spec__.loader, "__name__", type(m.__spec__.loader).__name__)
               for n, m in sys.modules.items() if n.split(".")[0] == "empmix_web"}
    return {"compiled": compiled, "loaders": loaders, "refused": refused,
            "frame": [frame.filename, frame.lineno, frame.line] if frame else None}

json.dumps({"own": fresh_import(None), "posed": fresh_import(b"\x00\x00\r\n")})
`);
process.stdout.write(result + "\n");
process.exit(0);
