// What the keyboard-first pages share (the rater's page, labeling.js, and adjudication, adjudication.js):
// whether the focus is in a text box, posting an htmx form, and picking a choice or rating by its key.
window.SieveKeys = (() => {
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

  return { typing, send, pick };
})();
