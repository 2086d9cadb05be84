// congso console: small progressive enhancement. Every page works without it.
// - [data-refresh="/url"][data-every="S"]: the element's content is replaced every S seconds
//   by the HTML fragment the server renders at /url (escaped there, as every page).
// - form[data-confirm="..."]: asks before posting (deleting, deactivating).
// - [data-autosubmit] inputs: submit their form on change (filters).
(function () {
  "use strict";
  function refresh(el) {
    var url = el.getAttribute("data-refresh");
    var every = parseFloat(el.getAttribute("data-every") || "5") * 1000;
    var stopped = false;
    function tick() {
      if (stopped) return;
      fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) {
          // The session ended (idle, disabled): show the login page itself, not inside the box.
          if (r.redirected && new URL(r.url).pathname === "/login") {
            stopped = true; window.location.reload(); throw new Error("logged out");
          }
          if (r.status === 286) { stopped = true; }  // the server says: finished, stop asking
          if (!r.ok && r.status !== 286) throw new Error(r.status);
          return r.text();
        })
        .then(function (html) { el.innerHTML = html; })
        .catch(function () { /* keep the last content; try again next tick */ })
        .then(function () { if (!stopped) setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), refresh);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-autosubmit]"), function (i) {
      i.addEventListener("change", function () { i.form.submit(); });
    });
  });
})();
