// ReDoc over the document of the microversion picked in the select above it.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("placement-docs-config").textContent);
  var picker = document.getElementById("version");
  picker.addEventListener("change", function () {
    window.location.search = "?version=" + encodeURIComponent(picker.value);
  });
  Redoc.init(config.url, { hideDownloadButton: false }, document.getElementById("redoc"));
})();
