// Swagger UI over one OpenAPI document per microversion (the top bar picks one).
// Every request made from a document carries that document's microversion.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("placement-docs-config").textContent);

  function currentVersion() {
    var spec = window.ui && window.ui.specSelectors.specJson();
    return spec ? spec.getIn(["info", "version"]) : null;
  }

  window.ui = SwaggerUIBundle({
    urls: config.urls,
    "urls.primaryName": config.primary,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    validatorUrl: null,
    persistAuthorization: true,
    displayRequestDuration: true,
    requestInterceptor: function (request) {
      var version = currentVersion();
      if (version && request.url.indexOf(config.documents) === -1) {
        request.headers["OpenStack-API-Version"] = "placement " + version;
      }
      return request;
    },
  });
})();
