import { loadPyodide } from "/pyodide/pyodide.mjs";

const latest = await (await fetch("/dist/empmix_web-latest.json")).json();
window.pyodide = await loadPyodide({ indexURL: "/pyodide/" });
await window.pyodide.loadPackage(latest.wheel);
window.sdkReady = true;
