// The adjudication page, keyboard first like the rater's page: the key beside a label picks it (toggles it
// in a multiple choice; a rating's digits rate), R goes to the reason, Enter decides, U closes the item as
// unlabelable (staff), N or S shows the next waiting item. While typing in a text box no key is taken:
// Enter decides, Esc leaves the box. The forms are htmx forms: the next item replaces #work, no reload.
(() => {
  const { typing, send, pick } = window.SieveKeys;
  const unlabelable = () => {
    const flag = document.getElementById("unlabelable-flag");
    if (!flag || !document.getElementById("unlabelable")) return false;
    flag.value = "1";
    return send("adjudicate-form");
  };


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
    if (event.key === "Enter") {
      if (target.closest && target.closest("button, a")) return;  // a focused button does what it says
      if (send("adjudicate-form")) event.preventDefault();
      return;
    }
    if (event.repeat || event.key.length !== 1) return;
    const key = event.key;
    const form = document.getElementById("adjudicate-form");
    // A label's own key comes first; the page's keys are the ones no label uses.
    if (form && pick(form, key)) {
      event.preventDefault();
      return;
    }
    const lower = key.toLowerCase();
    if (lower === "r") {
      const reason = document.getElementById("reason") || null;
      if (reason) {
        event.preventDefault();  // the R itself is not typed into the box
        reason.focus();
      }
    } else if (lower === "u") {
      if (unlabelable()) event.preventDefault();
    } else if ((lower === "n" || lower === "s") && send("skip-form")) {
      event.preventDefault();
    }
  });

  // A click on "Close as unlabelable" posts the same flag as U (htmx posts the form's fields).
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("#unlabelable")) {
      const flag = document.getElementById("unlabelable-flag");
      if (flag) flag.value = "1";
    }
  });

  // htmx gives the focus back to an element of the same id when it swaps: right when the same item comes
  // back with an error (the reason box keeps it), wrong for a new item, whose keys must reach the page.
  // Done on afterSwap, which runs in the same task as the swap: no key can slip in between.
  let shownItem = null;
  const settle = () => {
    const form = document.getElementById("adjudicate-form");
    const item = form ? form.dataset.item : null;
    if (item !== shownItem && document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
    shownItem = item;
    const box = document.getElementById("final-text");
    if (box && !box.value && !typing(document.activeElement)) box.focus();
  };
  document.addEventListener("DOMContentLoaded", () => {
    settle();
    document.body.dataset.keys = "ready";  // what the browser tests wait for before pressing keys
  });
  document.addEventListener("htmx:afterSwap", settle);
})();
