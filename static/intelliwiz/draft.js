// Puts back what someone typed before their session ended (apps/peoples/drafts.py): the page
// holds the kept fields as JSON; the form they belong to (the one whose hidden fields match and
// that has most of their names) gets their values. Hidden fields and files are left alone.
(function () {
  const draft = JSON.parse(document.getElementById("restored-draft").textContent);
  const names = Object.keys(draft);
  function fits(form) {
    const hidden = [...form.querySelectorAll("input[type=hidden][name]")].filter(
      (input) => input.name !== "csrfmiddlewaretoken" && input.name !== "next"
    );
    if (hidden.some((input) => !(draft[input.name] || []).includes(input.value))) return -1;
    return names.filter((name) => form.elements.namedItem(name)).length;
  }
  const forms = [...document.querySelectorAll("main form")];
  const form = forms.sort((a, b) => fits(b) - fits(a))[0];
  if (!form || fits(form) <= 0) return;
  for (const name of names) {
    const values = draft[name];
    for (const field of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
      if (field.type === "hidden" || field.type === "file") continue;
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = values.includes(field.value);
      } else if (field.tagName === "SELECT") {
        for (const option of field.options) option.selected = values.includes(option.value);
      } else {
        field.value = values[0] ?? "";
      }
      field.dispatchEvent(new Event("change", {bubbles: true}));
    }
  }
  const details = form.closest("details");
  if (details) details.open = true;
})();
