// Live updates: every data-refresh ms, fetch this page with ?partial=1 and swap #live.
// Paused while the tab is hidden or the pointer is on a form inside #live.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var every = parseInt(document.body.dataset.refresh || "1000", 10);
  var busy = false;
  function url() {
    var u = new URL(window.location.href);
    u.searchParams.set("partial", "1");
    u.searchParams.delete("msg");
    return u.toString();
  }
  function refresh() {
    if (busy || document.hidden || live.querySelector("form:hover, :focus")) return;
    busy = true;
    fetch(url(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; live.dataset.updated = Date.now(); } })
      .catch(function () {})
      .finally(function () { busy = false; });
  }
  if (every > 0) setInterval(refresh, every);
})();
