// The API docs page: starts the vendored Swagger UI on the schema named by #swagger-ui.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") return;
  window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    domNode: root,
    deepLinking: false,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
});
