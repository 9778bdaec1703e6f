// The tenant API's docs page (GET /api/v1/docs): Swagger UI from static/vendor, no CDN.
(function () {
  var specUrl = document.currentScript.getAttribute("data-spec-url");
  window.ui = SwaggerUIBundle({ url: specUrl, dom_id: "#swagger-ui", deepLinking: true });
})();
