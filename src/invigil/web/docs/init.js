// Swagger UI for /openapi.json. A file, not an inline script, so the page keeps the
// server's Content-Security-Policy (script-src 'self'); no validator badge (it calls out).
window.ui = SwaggerUIBundle({
  url: "../openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
