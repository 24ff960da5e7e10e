// baoflow dashboard: live fragments without a reload. Every element with
// data-poll="URL" is refreshed from URL every data-every milliseconds; the server
// answers the same HTML the page was rendered with. A 401 (the session ended) reloads
// the page, which then shows the log-in page. No framework, nothing from a CDN.
(function () {
  "use strict";
  function poll(el) {
    var every = parseInt(el.getAttribute("data-every") || "3000", 10);
    var url = el.getAttribute("data-poll");
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "X-Fragment": "1" } })
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== el.getAttribute("data-last")) {
            el.innerHTML = html;
            el.setAttribute("data-last", html);
            el.dispatchEvent(new CustomEvent("baoflow:refreshed", { bubbles: true }));
          }
        })
        .catch(function () { /* the next tick tries again */ })
        .finally(function () { busy = false; });
    }
    window.setInterval(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < els.length; i++) { poll(els[i]); }
  });
})();
