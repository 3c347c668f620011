// mixpanel-browser's start-up as a site would have it: the library in <head>, init at once.
// window.benchStartup: navigation start -> this script, and -> init's "loaded" callback (ms);
// "import" is mixpanel.min.js loaded and evaluated (from mp-stub.js, just before it, to here).
"use strict";
(function () {
  var first = performance.now();
  mixpanel.init("startup_mpnav", {
    api_host: location.origin, batch_requests: true, batch_size: 50, batch_flush_interval_ms: 1000,
    persistence: "localStorage", ip: false, track_pageview: false, autocapture: false,
    loaded: function () {
      var done = performance.now();
      window.benchStartup = JSON.stringify({
        interpreter: "javascript", nav_to_first_line_ms: first, nav_to_init_ms: done,
        import_ms: first - window.benchStubAt, init_ms: done - first, import_to_init_ms: done - window.benchStubAt,
      });
      window.benchPyReady = true;
    },
  });
})();
