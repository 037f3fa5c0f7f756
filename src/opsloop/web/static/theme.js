// Runs before first paint (loaded without defer) so a dark-theme user never sees a white flash.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("opsloop-theme"); } catch (e) { /* storage disabled */ }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved || (dark ? "dark" : "light");
})();
