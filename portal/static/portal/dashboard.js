// Refreshes the dashboard's figures every 5 seconds without reloading the page: fetches
// the server-rendered fragment and swaps it in. Pauses while the tab is hidden.
(function () {
  "use strict";
  var live = document.getElementById("dashboard-live");
  if (!live || !window.fetch) return;
  var url = live.getAttribute("data-fragment-url");
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) { live.innerHTML = html; })
      .catch(function () { /* keep the figures shown; try again next time */ });
  }
  window.setInterval(refresh, 5000);
})();
