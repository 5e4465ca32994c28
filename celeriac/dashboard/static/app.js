// Live updates: fetch this page with ?partial=1 and swap #live.
// Pages with data-stream (overview, task list) refetch when the server-sent event stream
// says something changed (at most a few times a second, coalesced by the server), and
// every 10 s anyway (a worker going silent sends no event). Other pages, and these when
// EventSource is missing or its stream keeps failing, poll every data-refresh ms.
// Refreshes pause while the tab is hidden or the pointer is on a form inside #live.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var every = parseInt(document.body.dataset.refresh || "1000", 10);
  var stream = document.body.dataset.stream;
  var busy = false, again = false, timer = null, failures = 0;
  function url() {
    var u = new URL(window.location.href);
    u.searchParams.set("partial", "1");
    u.searchParams.delete("msg");
    u.searchParams.delete("failed");
    return u.toString();
  }
  function refresh() {
    if (document.hidden || live.querySelector("form:hover, :focus")) return;
    if (busy) { again = true; return; }  // one fetch at a time; one more after it
    busy = true;
    fetch(url(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; live.dataset.updated = Date.now(); } })
      .catch(function () {})
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  function poll(ms) {
    if (timer !== null) clearInterval(timer);
    timer = ms > 0 ? setInterval(refresh, ms) : null;
  }
  function follow() {
    var source = new EventSource(stream, { withCredentials: true });
    source.addEventListener("hello", function () { failures = 0; live.dataset.mode = "stream"; });
    source.addEventListener("update", refresh);
    source.onerror = function () {
      // The server ends each stream after a while and the browser reconnects by itself;
      // only repeated failures (no stream at all) mean falling back to polling.
      failures += 1;
      if (failures >= 3) { source.close(); live.dataset.mode = "poll"; poll(every); }
    };
    poll(Math.max(every, 10000));
  }
  if (stream && window.EventSource) { follow(); } else { live.dataset.mode = "poll"; poll(every); }
})();
