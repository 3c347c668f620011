// Drives a PyScript bench page (bench/page/pyscript.template.html), Pyodide or MicroPython alike
// (classic script: the collector's CSP forbids inline scripts). runPy(code) runs a snippet wrapped
// by tests/harness.py's wrap(): it resolves with '{"ok": <json>}' or '{"error": ..., "trace": ...}'.
"use strict";
window.runPy = function (code) {
  return new Promise(function (resolve) { window._pyRun(code, resolve); });
};
