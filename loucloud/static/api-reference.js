// The API reference page: Swagger UI over LouCloud's own OpenAPI document. "Try it
// out" sends the page's session cookie; writes need a token (Authorize) or the
// X-CSRFToken header, so the reference never acts by itself.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
  });
})();
