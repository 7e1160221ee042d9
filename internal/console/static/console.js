// Sallyport admin center: the one script of the console (no inline
// script anywhere: the pages' CSP forbids it). Everything works without
// it; it only adds:
//  - live regions: every element with an id and data-live is refreshed
//    from the same page every few seconds, without reloading the page;
//  - copy buttons: a button with data-copy="ID" copies that element's text.
(function () {
  "use strict";
  var period = 3000;
  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0 || document.hidden) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh && fresh.innerHTML !== el.innerHTML) { el.innerHTML = fresh.innerHTML; }
        });
        document.documentElement.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next round tries again */ });
  }
  function copy(ev) {
    var b = ev.target.closest("button[data-copy]");
    if (!b) { return; }
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el || !navigator.clipboard) { return; }
    ev.preventDefault();
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      var old = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = old; }, 1500);
    });
  }
  document.addEventListener("click", copy);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (b) { b.hidden = false; });
    if (document.querySelector("[data-live][id]")) { setInterval(refresh, period); }
  });
})();
