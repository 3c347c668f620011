// Benchmark harness (classic script: the collector's CSP forbids inline scripts).
// Every loop times itself with performance.now(); nothing crosses into Python per call.
"use strict";

// Five small properties, the same object for both SDKs and the floor.
window.BENCH_PROPS = { plan: "pro", step: 3, price: 9.99, beta: true, source: "bench" };

// Start a named mixpanel-browser instance with batching on, sending to this origin.
window.mpStart = function (name, token, batchSize, flushMs) {
  return new Promise(function (resolve) {
    mixpanel.init(token, {
      api_host: location.origin, batch_requests: true, batch_size: batchSize,
      batch_flush_interval_ms: flushMs, persistence: "localStorage", ip: false,
      track_pageview: false, autocapture: false, debug: false,
      loaded: function () { resolve(true); },
    }, name);
  });
};

// Track n events untimed (queue prefill); resolves at once, persistence continues in the background.
window.mpFill = function (name, n, eventName) {
  var mp = mixpanel[name], t0 = performance.now();
  for (var i = 0; i < n; i++) mp.track(eventName || "bench_fill", window.BENCH_PROPS);
  return performance.now() - t0;
};

// Time n track() calls one by one. Returns per-call milliseconds.
window.mpLoop = function (name, n) {
  var mp = mixpanel[name], props = window.BENCH_PROPS, times = new Array(n);
  for (var i = 0; i < n; i++) {
    var t0 = performance.now();
    mp.track("bench_event", props);
    times[i] = performance.now() - t0;
  }
  return times;
};

// Time n track() calls one at a time, each until mixpanel-browser reports the record enqueued
// in its persisted queue (its track callback). Persistence is deferred to promise callbacks;
// with one call in flight the storage lock is free, so no timer runs in between: this is the
// whole main-thread cost of a tracked event. Returns per-call milliseconds (or n, untimed).
window.mpSeq = async function (name, n, timed) {
  var mp = mixpanel[name], props = window.BENCH_PROPS, times = timed ? new Array(n) : null;
  for (var i = 0; i < n; i++) {
    var t0 = performance.now();
    await new Promise(function (resolve) { mp.track(timed ? "bench_event" : "bench_fill", props, resolve); });
    if (timed) times[i] = performance.now() - t0;
  }
  return timed ? times : n;
};

// Records in mixpanel-browser's persisted event queue (what survives a reload).
window.mpPersisted = function (token) {
  var raw = localStorage.getItem("__mpq_" + token + "_ev");
  return raw ? raw.split('"flushAfter"').length - 1 : 0;
};

// Stop an instance for good: its batcher stops and its queue is cleared.
window.mpStop = function (name) {
  var mp = mixpanel[name];
  if (mp) mp.stop_batch_senders();
  return true;
};

// The floor: build the same event as empmix-web does, serialise it and write it under its own
// localStorage key. The least any SDK with a persisted queue has to do per track().
window.floorLoop = function (prefix, start, n, timed) {
  var props = window.BENCH_PROPS, times = timed ? new Array(n) : null;
  var base = {
    token: "floor", distinct_id: "$device:0f3c9a7e-2b1d-4c55-9a51-6d8e2f4b7a10",
    $device_id: "0f3c9a7e-2b1d-4c55-9a51-6d8e2f4b7a10", mp_lib: "floor", $lib_version: "0",
    $current_url: location.href, $referrer: document.referrer,
    $screen_width: screen.width, $screen_height: screen.height,
  };
  for (var i = 0; i < n; i++) {
    var t0 = performance.now();
    var p = Object.assign({}, base);
    p.time = Date.now();
    p.$insert_id = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
    Object.assign(p, props);
    localStorage.setItem(prefix + (start + i), JSON.stringify({ event: "bench_event", properties: p }));
    if (timed) times[i] = performance.now() - t0;
  }
  return timed ? times : n;
};

// mixpanel.init timed until its "loaded" callback (fresh page: the library is parsed already).
window.mpInitTimed = function (name, token) {
  var t0 = performance.now();
  return window.mpStart(name, token, 50, 1000).then(function () { return performance.now() - t0; });
};

// Keys in localStorage that start with prefix (the empmix-web queue is one key per record).
window.countKeys = function (prefix) {
  return Object.keys(localStorage).filter(function (k) { return k.indexOf(prefix) === 0; }).length;
};

window.clearStorage = function () { localStorage.clear(); return true; };
window.storageChars = function () {
  var total = 0;
  for (var i = 0; i < localStorage.length; i++) {
    var k = localStorage.key(i);
    total += k.length + (localStorage.getItem(k) || "").length;
  }
  return total;
};
window.harnessReady = true;
