// Loads Pyodide and installs (does not import) the empmix-web wheel, timing both. The wheel is
// the bytecode one built for this Pyodide (empmix_web-latest.json's "pyodide_wheel") when this
// Pyodide's Python has its cache tag and magic number, else the plain one;
// bench.html?wheel=plain installs the plain wheel anyway (its sources are compiled on import).
import { loadPyodide } from "/pyodide/pyodide.mjs";

const t0 = performance.now();
window.pyodide = await loadPyodide({ indexURL: "/pyodide/" });
const t1 = performance.now();
const latest = await (await fetch("/dist/empmix_web-latest.json")).json();
const plain = new URLSearchParams(location.search).get("wheel") === "plain";
const runs = window.pyodide.runPython("import importlib.util, sys; [sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex()]").toJs();
const fits = runs[0] === latest.pyodide_cache_tag && runs[1] === latest.pyodide_magic;
const wheel = plain || !fits ? latest.wheel : latest.pyodide_wheel;
await window.pyodide.loadPackage(wheel);
const t2 = performance.now();
window.benchLoad = { pyodide_ms: t1 - t0, wheel_install_ms: t2 - t1, wheel };
window.benchReady = true;
