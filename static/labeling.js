// The rater's page, keyboard first: a choice's key picks it (toggles it in a multiple choice), a
// rating's digits rate, Enter submits, S skips, Z undoes the last label. While the rater types in a
// text box no key is taken from them: Enter submits that box's form, Shift+Enter is a new line, Esc
// leaves the box. The forms are htmx forms, so the next item replaces #work without a reload.
(() => {
  const { typing, send, pick } = window.SieveKeys;

  // On a phone, open instructions push the item and its Submit below the fold: they start closed there.
  const instructions = document.querySelector("details.instructions");
  if (instructions && window.matchMedia("(max-width: 600px)").matches) instructions.open = false;

  document.addEventListener("keydown", (event) => {
    if (!document.getElementById("work") || event.altKey || event.isComposing) return;
    const target = event.target;
    if (typing(target)) {
      if (event.key === "Escape") {
        target.blur();
      } else if (event.key === "Enter" && !event.shiftKey && target.form && target.form.id) {
        event.preventDefault();
        send(target.form.id);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    // Enter on a focused button or link does what that button or link does.
    if (event.key === "Enter") {
      if (target.closest && target.closest("button, a")) return;
      if (send("label-form")) event.preventDefault();
      return;
    }
    if (event.repeat) return;
    const key = event.key;
    if ((key === "s" || key === "S") && send("skip-form")) {
      event.preventDefault();
    } else if ((key === "z" || key === "Z") && send("undo-form")) {
      event.preventDefault();
    } else {
      const form = document.getElementById("label-form");
      if (form && key.length === 1 && pick(form, key)) event.preventDefault();
    }
  });

  // The free-text box takes the focus as each item arrives, so the rater can type at once.
  const focusText = (root) => {
    const box = root.querySelector ? root.querySelector("#free-text") : null;
    if (box) box.focus();
  };
  document.addEventListener("DOMContentLoaded", () => {
    focusText(document);
    document.body.dataset.keys = "ready";  // what the browser tests wait for before pressing keys
  });
  document.addEventListener("htmx:afterSettle", () => focusText(document));
})();
