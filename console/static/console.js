// The console's own script: copy buttons, confirmations and the live chart's refresh.
// Loaded from our origin (the CSP allows no inline script); every page works without it.
"use strict";

function copyButtons() {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function liveRefresh() {
  const live = document.getElementById("live");
  if (!live || !live.dataset.liveUrl) return;
  const every = 5000;
  async function refresh() {
    if (document.hidden) return;
    try {
      const answer = await fetch(live.dataset.liveUrl, { credentials: "same-origin" });
      if (answer.ok) live.innerHTML = await answer.text();
    } catch (error) {
      // Offline for a moment: keep the last chart, try again at the next tick.
    }
  }
  setInterval(refresh, every);
}

document.addEventListener("DOMContentLoaded", () => {
  copyButtons();
  confirmations();
  liveRefresh();
});
