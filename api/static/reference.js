// Filters the reference as one types: our own script, no library.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("filter");
  const none = document.querySelector(".nomatch");
  if (!box) return;
  box.addEventListener("input", () => {
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const group of document.querySelectorAll("section.group")) {
      let inGroup = 0;
      for (const op of group.querySelectorAll("section.operation")) {
        const hit = words.every((w) => op.dataset.search.includes(w));
        op.hidden = !hit;
        if (hit) inGroup += 1;
      }
      group.hidden = inGroup === 0;
      shown += inGroup;
    }
    if (none) none.hidden = shown !== 0;
  });
});
