// A page section marked data-poll shows a background job (a ledger verification, a policy
// simulation) that is not finished yet: fetch the page again every second and put the fresh
// section in its place, until the fresh one is no longer marked (the job is done). Without
// JavaScript the section's Refresh link does the same by hand.
(function () {
  "use strict";
  var INTERVAL_MS = 1000;
  var MAX_POLLS = 600; // ten minutes, then the Refresh link is left to the reader

  function poll(remaining) {
    var section = document.querySelector("[data-poll]");
    if (!section || !section.id || remaining <= 0) {
      return;
    }
    window.setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(section.id);
            if (fresh) {
              section.replaceWith(document.importNode(fresh, true));
            }
          }
          poll(remaining - 1);
        })
        .catch(function () {
          poll(remaining - 1);
        });
    }, INTERVAL_MS);
  }

  poll(MAX_POLLS);
})();
