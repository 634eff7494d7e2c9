// The API docs (templates/drf_spectacular/swagger_ui.html) in the chat's theme. The server
// draws "light" and "dark" itself; "system" follows the browser's preference, here, before
// the first paint and whenever it changes. Swagger UI's dark look hangs on <html class="dark-mode">.
(function () {
  "use strict";
  var root = document.documentElement;
  if (root.getAttribute("data-theme") !== "system" || !window.matchMedia) return;
  var dark = window.matchMedia("(prefers-color-scheme: dark)");
  function apply() {
    root.classList.toggle("dark-mode", dark.matches);
  }
  apply();
  dark.addEventListener("change", apply);
})();
