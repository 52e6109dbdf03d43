// The rater's page, keyboard first: a choice's key picks it (toggles it in a multiple choice), a
// rating's digits rate, Enter submits, S skips, Z undoes the last label. While the rater types in a
// text box no key is taken from them: Enter submits that box's form, Shift+Enter is a new line, Esc
// leaves the box. The forms are htmx forms, so the next item replaces #work without a reload.
(() => {
  const TEXT_TYPES = new Set(["text", "search", "email", "url", "number", "password", "tel"]);
  const typing = (el) => el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable ||
    (el.tagName === "INPUT" && TEXT_TYPES.has(el.type)));
  const send = (id) => {
    const form = document.getElementById(id);
    if (!form) return false;
    // htmx binds a swapped-in form when the swap settles (some milliseconds later); a fast key must not
    // slip in before and post the form the plain way. Processing twice is harmless.
    if (window.htmx) window.htmx.process(form);
    form.requestSubmit();
    return true;
  };

  // A rating above 9 takes two digits typed quickly: 1 then 0 is 10.
  let digits = "";
  let digitTimer = 0;

  function pick(form, key) {
    const inputs = [...form.querySelectorAll("input[data-hotkey], .rating input")];
    let input;
    if (form.dataset.kind === "rating" && /^[0-9]$/.test(key)) {
      clearTimeout(digitTimer);
      digitTimer = setTimeout(() => { digits = ""; }, 800);
      digits += key;
      input = inputs.find((i) => i.value === digits);
      if (!input) {
        digits = key;
        input = inputs.find((i) => i.value === key);
      }
    } else {
      input = inputs.find((i) => i.dataset.hotkey === key) ||
        inputs.find((i) => (i.dataset.hotkey || "").toLowerCase() === key.toLowerCase());
    }
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

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
