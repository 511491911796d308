// The project owners' pages: the dashboard's live part refreshes itself, a new API key is
// selected for copying, and the API reference page starts Swagger UI (vendored).
"use strict";

(function () {
  function refreshLive(live) {
    const url = live.dataset.liveUrl;
    const every = Math.max(5, Number(live.dataset.refreshSeconds) || 10) * 1000;
    let failures = 0;
    let timer = null;

    async function tick() {
      timer = null;
      if (document.hidden) return; // resumed by visibilitychange
      try {
        const response = await fetch(url, {
          credentials: "same-origin",
          headers: { Accept: "text/html" },
          cache: "no-store",
        });
        // Signed out (redirected to the sign-in page) or no longer the owner: stop.
        if (response.redirected || response.status === 403 || response.status === 404) return;
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        // Rendered by our server with every value escaped.
        live.innerHTML = await response.text();
        failures = 0;
      } catch (error) {
        failures += 1;
      }
      // Back off while the server does not answer: 10 s, 20 s, 40 s ... up to 5 minutes.
      timer = setTimeout(tick, Math.min(every * 2 ** failures, 300000));
    }

    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer === null) tick();
    });
    timer = setTimeout(tick, every);
  }

  function startSwagger(root) {
    const settingsNode = document.getElementById("swagger-settings");
    if (!window.SwaggerUIBundle || !settingsNode) return;
    const settings = JSON.parse(settingsNode.textContent);
    window.SwaggerUIBundle({
      ...settings,
      dom_id: "#" + root.id,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      persistAuthorization: false,
    });
  }

  function init() {
    const live = document.querySelector("[data-live-url]");
    if (live) refreshLive(live);
    for (const input of document.querySelectorAll("[data-select-on-focus]")) {
      input.addEventListener("focus", () => input.select());
    }
    const swagger = document.getElementById("swagger-ui");
    if (swagger) startSwagger(swagger);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
