// onnxdream microscope: layer search over the tree. Names are read from data attributes and
// shown through textContent only, so a name is never parsed as markup.
"use strict";
(function () {
  const box = document.getElementById("search");
  const tree = document.getElementById("tree");
  if (!box || !tree) return;
  const entries = Array.from(tree.querySelectorAll("li.entry"));
  const count = document.getElementById("search-count");
  function filter() {
    const query = box.value.trim().toLowerCase();
    let hits = 0;
    for (const li of entries) {
      li.hidden = query !== "";
      li.classList.remove("hit");
    }
    if (query === "") {
      count.textContent = "";
      return;
    }
    for (const li of entries) {
      if (!li.dataset.name.toLowerCase().includes(query)) continue;
      hits += 1;
      li.classList.add("hit");
      // Show the match, everything under it, and the scopes above it (opened).
      li.querySelectorAll("li.entry").forEach((inner) => { inner.hidden = false; });
      for (let node = li; node && node !== tree; node = node.parentElement) {
        if (node.matches("li.entry")) node.hidden = false;
        if (node.tagName === "DETAILS") node.open = true;
      }
    }
    count.textContent = hits === 1 ? "1 match" : hits + " matches";
  }
  box.addEventListener("input", filter);
  if (box.value) filter();
})();
