// socialgrid's embed script. A site owner pastes
//   <script src="https://<socialgrid>/static/socialgrid/plugin/embed.js" data-project="<slug>" async></script>
// and this puts the project's plugin page (/embed/<slug>/ on the same server as this file)
// in an iframe right after that tag. It adds no globals, sets no cookies and loads nothing
// else into the host page; everything else runs inside the frame, on socialgrid's origin.
(function () {
  "use strict";

  var SCRIPT_PATH = "/static/socialgrid/plugin/embed.js";
  var SLUG = /^[-a-zA-Z0-9_]+$/;
  var WIDTH = 420;
  var HEIGHT = 520;
  var MIN_HEIGHT = 200;
  var MAX_HEIGHT = 1400;
  // The worker and its socket need scripts and socialgrid's own origin inside the frame;
  // popups, unsandboxed, let its links open a normal tab.
  var SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox";

  function embed(script) {
    if (script.getAttribute("data-socialgrid-embedded") !== null) return;
    script.setAttribute("data-socialgrid-embedded", "");
    var slug = script.getAttribute("data-project") || "";
    if (!SLUG.test(slug)) {
      console.warn("socialgrid: data-project must be a project slug, not " + JSON.stringify(slug));
      return;
    }
    var origin = new URL(script.src, document.baseURI).origin;
    var frame = document.createElement("iframe");
    frame.src = origin + "/embed/" + encodeURIComponent(slug) + "/";
    frame.title = script.getAttribute("data-title") || "socialgrid: compute for " + slug;
    frame.setAttribute("sandbox", SANDBOX);
    frame.setAttribute("loading", "lazy");
    frame.width = "100%";
    frame.height = String(HEIGHT);
    frame.style.maxWidth = WIDTH + "px";
    frame.style.border = "0";
    frame.style.display = "block";

    // The plugin page reports its height so the frame fits it without a scroll bar.
    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== origin) return;
      var data = event.data;
      if (!data || data.type !== "socialgrid:height" || typeof data.height !== "number") return;
      var height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(data.height)));
      frame.height = String(height);
    });

    var parent = script.parentNode;
    if (parent && parent !== document.head) parent.insertBefore(frame, script.nextSibling);
    else if (document.body) document.body.appendChild(frame);
    else document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(frame); });
  }

  // document.currentScript is this tag while it runs (async included); older browsers get a
  // search for every embed tag not handled yet.
  var current = document.currentScript;
  if (current) {
    embed(current);
  } else {
    var tags = document.querySelectorAll("script[data-project]");
    for (var i = 0; i < tags.length; i++) {
      if (tags[i].src.indexOf(SCRIPT_PATH) !== -1) embed(tags[i]);
    }
  }
})();
