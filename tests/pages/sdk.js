// Bare Pyodide (no PyScript) with the empmix-web wheel installed, not imported: the wheel with
// bytecode for this Pyodide (empmix_web-latest.json's "pyodide_wheel"), or with ?wheel=plain the
// plain one (its sources compiled on import). Tests drive it through pyodide.runPythonAsync.
import { loadPyodide } from "/pyodide/pyodide.mjs";

const latest = await (await fetch("/dist/empmix_web-latest.json")).json();
const plain = new URLSearchParams(location.search).get("wheel") === "plain";
window.pyodide = await loadPyodide({ indexURL: "/pyodide/" });
await window.pyodide.loadPackage(plain ? latest.wheel : latest.pyodide_wheel);
window.sdkReady = true;
