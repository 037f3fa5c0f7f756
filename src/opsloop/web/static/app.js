// Shell behaviour shared by every page: the theme switch and "/" to focus the search box.
const root = document.documentElement;

document.getElementById("theme-toggle")?.addEventListener("click", () => {
  const next = root.dataset.theme === "dark" ? "light" : "dark";
  root.dataset.theme = next;
  try { localStorage.setItem("opsloop-theme", next); } catch (e) { /* storage disabled */ }
  document.dispatchEvent(new CustomEvent("opsloop:theme", { detail: next }));
});

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  if (event.key === "/" && !typing) {
    event.preventDefault();
    document.querySelector(".global-search input")?.focus();
  }
});
