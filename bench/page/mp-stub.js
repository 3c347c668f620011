// The part of Mixpanel's loader snippet that mixpanel.min.js needs: a global "mixpanel" array
// with a snippet version. The real library replaces it when it loads (no network: the library
// itself is served from /vendor/, pinned by package.json).
window.mixpanel = [];
window.mixpanel.__SV = 1.2;
window.benchStubAt = performance.now();  // bench/page/mixpanel_boot.js: the library's load + evaluation
