// ecsportal: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Confirm dangerous actions named by data-confirm (CSP forbids inline handlers).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);
})();
