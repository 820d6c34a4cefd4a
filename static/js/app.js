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

  // The access-key fields only matter for the stored-key credential source; hide them otherwise.
  function syncCredentialFields() {
    var source = document.getElementById("id_credential_source");
    if (!source) { return; }
    var keys = source.value === "keys";
    Array.prototype.forEach.call(document.querySelectorAll(".keys-only"), function (el) {
      el.classList.toggle("d-none", !keys);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "id_credential_source") { syncCredentialFields(); }
  });
  document.addEventListener("DOMContentLoaded", syncCredentialFields);
  document.addEventListener("htmx:load", syncCredentialFields);
})();
