// ketaclinic: small progressive enhancements. No PHI is ever written to browser storage.
(function () {
  "use strict";
  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) { event.detail.headers["X-CSRFToken"] = token; }
  });
})();
