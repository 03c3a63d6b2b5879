// Swagger UI of /docs, started from this file: the page's CSP allows no inline script.
// Everything comes from this server: the bundle (vendored), the OpenAPI document, and no
// validator badge (Swagger UI would otherwise fetch one from validator.swagger.io).
const meta = document.querySelector('meta[name="gridgov-docs"]');
const config = JSON.parse(meta.content);

window.ui = SwaggerUIBundle({
  url: config.openapi_url,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
