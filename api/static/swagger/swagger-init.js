// Swagger UI over this server's own document. The dashboard keeps its key in session storage;
// when there is one, requests are authorised with it from the start.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: false,
    displayRequestDuration: true,
    // No calls to the public validator: the page must work offline.
    validatorUrl: null,
    onComplete: () => {
      const key = window.sessionStorage.getItem("backfill.key");
      if (key) ui.preauthorizeApiKey("bearerAuth", key);
    },
  });
  window.ui = ui;
});
