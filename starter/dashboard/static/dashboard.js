// c2c dashboard: refresh the live part of the page in place, and confirm destructive actions.
// Served as a file (not inline) so the Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";

  // While an operator types a note or has a control focused, a refresh would lose it.
  function busy() {
    var active = document.activeElement;
    if (active && active.closest && active.closest("#live form")) return true;
    var notes = document.querySelectorAll("#live input[name=note]");
    for (var i = 0; i < notes.length; i++) if (notes[i].value) return true;
    return false;
  }

  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // A redirect to the login form means the session ended: show it.
        if (response.redirected && new URL(response.url).pathname === "/login") {
          window.location.assign(response.url);
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html || busy()) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var live = document.getElementById("live");
        if (fresh && live) {
          live.replaceWith(fresh);
          document.body.dataset.refreshedAt = new Date().toISOString();
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  var seconds = parseInt(document.body.dataset.refreshS || "0", 10);
  if (seconds > 0) window.setInterval(refresh, seconds * 1000);
})();
