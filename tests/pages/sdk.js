// Bare Pyodide (no PyScript) with the empmix-web wheel installed, not imported: the bytecode wheel
// for this Pyodide (empmix_web-latest.json's "pyodide_wheel") when this Pyodide's Python has the
// cache tag and magic number it was compiled for, else the plain wheel (its sources compiled on
// import); ?wheel=plain always takes the plain one. Tests drive it through pyodide.runPythonAsync.
import { loadPyodide } from "/pyodide/pyodide.mjs";

const latest = await (await fetch("/dist/empmix_web-latest.json")).json();
const plain = new URLSearchParams(location.search).get("wheel") === "plain";
window.pyodide = await loadPyodide({ indexURL: "/pyodide/" });
const runs = window.pyodide.runPython("import importlib.util, sys; [sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex()]").toJs();
const fits = runs[0] === latest.pyodide_cache_tag && runs[1] === latest.pyodide_magic;
window.sdkWheel = plain || !fits ? latest.wheel : latest.pyodide_wheel;
await window.pyodide.loadPackage(window.sdkWheel);
window.sdkReady = true;
