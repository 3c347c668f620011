/* The demo's boot script tag. On a site it is one plain line in the page, before PyScript:

     <script src="/empmix-boot.js" data-token="YOUR_TOKEN"></script>

   The demo's pages take the project from ?token= (default demo_token: the tests keep their
   visitors apart by token), so this writes that line with it. It is a file, not an inline script,
   because the collector serves the site with a Content-Security-Policy that allows no inline
   script; document.write keeps the boot script synchronous, ahead of PyScript. */
document.write('<script src="/empmix-boot.js" data-token="' +
  (/[?&]token=([\w.-]{1,64})(&|$)/.exec(location.search) || [0, "demo_token"])[1] + '"></script>');
