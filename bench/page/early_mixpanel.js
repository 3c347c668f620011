// mixpanel-browser as a site has it for page views (bench/early.py): the UMD build in <head>,
// init at once with track_pageview: true, the project of ?token= (one per visit), the collector
// of this origin. Batching is the library's default (5 s); it keeps the page view in
// localStorage and sends what is left with sendBeacon on pagehide. window.earlyReady: loaded.
"use strict";
(function () {
  var token = (/[?&]token=([\w.-]{1,64})(&|$)/.exec(location.search) || [0, "early_mixpanel"])[1];
  mixpanel.init(token, {
    api_host: location.origin, persistence: "localStorage", ip: false, track_pageview: true,
    autocapture: false, loaded: function () { window.earlyReady = true; },
  });
})();
