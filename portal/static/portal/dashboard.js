// Refreshes the dashboard's figures every 5 seconds without reloading the page: fetches
// the server-rendered fragment (for the range in the page's address) and swaps each of
// its parts into the page's part of the same name, leaving the range form as it is.
// Pauses while the tab is hidden.
(function () {
  "use strict";
  var live = document.getElementById("dashboard-live");
  if (!live || !window.fetch || !window.DOMParser) return;
  var url = live.getAttribute("data-fragment-url");
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("[data-part]").forEach(function (part) {
          var shown = live.querySelector('[data-part="' + part.getAttribute("data-part") + '"]');
          if (shown) shown.innerHTML = part.innerHTML;
        });
      })
      .catch(function () { /* keep the figures shown; try again next time */ });
  }
  window.setInterval(refresh, 5000);
})();
