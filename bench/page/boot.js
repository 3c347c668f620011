// Loads Pyodide and installs (does not import) the empmix-web wheel, timing both.
import { loadPyodide } from "/pyodide/pyodide.mjs";

const t0 = performance.now();
window.pyodide = await loadPyodide({ indexURL: "/pyodide/" });
const t1 = performance.now();
const latest = await (await fetch("/dist/empmix_web-latest.json")).json();
await window.pyodide.loadPackage(latest.wheel);
const t2 = performance.now();
window.benchLoad = { pyodide_ms: t1 - t0, wheel_install_ms: t2 - t1, wheel: latest.wheel };
window.benchReady = true;
