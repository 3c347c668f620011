/* The demo's boot script tag. On a site it is one plain line in the page, before PyScript:

     <script src="/empmix-boot.js" data-token="YOUR_TOKEN" data-config='{"cookieless": "until_consent"}'></script>

   The demo's pages take the project from ?token= (default demo_token: the tests keep their
   visitors apart by token), so this writes that line with it, and with this tag's own
   data-config (the app's pages: {"cookieless": "until_consent"}; EmpMix.init() takes the same
   config from the boot script's tag). It is a file, not an inline script, because the collector
   serves the site with a Content-Security-Policy that allows no inline script; document.write
   keeps the boot script synchronous, ahead of PyScript.

   It also marks <html data-consent="in|out"> when the visitor's choice is stored (the SDK's key
   empmix_<token>_consent), so that the consent banner is hidden from the first paint, not only
   once Python runs; reading stores nothing. */
(() => {
  const token = (/[?&]token=([\w.-]{1,64})(&|$)/.exec(location.search) || [0, "demo_token"])[1];
  const config = document.currentScript.dataset.config;
  const attr = text => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  document.write('<script src="/empmix-boot.js" data-token="' + token + '"' +
    (config ? ' data-config="' + attr(config) + '"' : "") + '></script>');
  try {
    const choice = localStorage.getItem("empmix_" + token + "_consent");
    if (choice == "in" || choice == "out") document.documentElement.dataset.consent = choice;
  } catch {} // storage the browser refuses: the banner shows until app.py decides
})();
