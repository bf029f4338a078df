// Accessible autocomplete boxes (select2) in the admin.
// - The combobox and the read-only textbox inside are labelled only by the chosen value, so an
//   empty box has no name: point both at the field's <label>.
// - The search field of the open dropdown (appended to <body>, away from the field) has no
//   label at all: point it at the same <label>, found through the results list it controls
//   ("select2-<select id>-results").
// - An expanded combobox must say which list it controls (ARIA 1.2: aria-controls); select2
//   only sets aria-owns while open, so mirror it, and drop it again when the list closes.
// select2 re-renders these elements as it opens, closes and loads results, so keep watching.
(function () {
  var RESULTS = /^select2-(.+)-results$/;

  function labelFor(selectId) {
    var label = document.querySelector('label[for="' + selectId + '"]');
    if (label && !label.id) { label.id = selectId + "-label"; }
    return label;
  }

  function setAttribute(el, name, value) {
    if (value === null) {
      if (el.hasAttribute(name)) { el.removeAttribute(name); }
    } else if (el.getAttribute(name) !== value) {
      el.setAttribute(name, value);
    }
  }

  function name() {
    document.querySelectorAll("select.admin-autocomplete").forEach(function (select) {
      var label = labelFor(select.id);
      var container = select.nextElementSibling;
      if (!label || !container || !container.classList.contains("select2")) { return; }
      container.querySelectorAll('[role="combobox"], [role="textbox"]').forEach(function (el) {
        setAttribute(el, "aria-labelledby", label.id);
      });
      container.querySelectorAll('[role="combobox"]').forEach(function (el) {
        var expanded = el.getAttribute("aria-expanded") === "true";
        setAttribute(el, "aria-controls", expanded ? el.getAttribute("aria-owns") : null);
      });
    });
    document.querySelectorAll(".select2-search__field[aria-controls]").forEach(function (search) {
      var match = RESULTS.exec(search.getAttribute("aria-controls"));
      var label = match && labelFor(match[1]);
      if (label) { setAttribute(search, "aria-labelledby", label.id); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    name();
    new MutationObserver(name).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["aria-labelledby", "aria-owns", "aria-expanded", "aria-controls"],
    });
  });
})();
