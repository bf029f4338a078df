// Accessible names for the admin's autocomplete boxes (select2): their combobox and the
// read-only textbox inside are labelled only by the chosen value, so an empty box has no
// name. Point both at the field's <label>; select2 may re-render them, so keep watching.
(function () {
  function name() {
    document.querySelectorAll("select.admin-autocomplete").forEach(function (select) {
      var label = document.querySelector('label[for="' + select.id + '"]');
      var container = select.nextElementSibling;
      if (!label || !container) { return; }
      if (!label.id) { label.id = select.id + "-label"; }
      container.querySelectorAll('[role="combobox"], [role="textbox"]').forEach(function (el) {
        if (el.getAttribute("aria-labelledby") !== label.id) {
          el.setAttribute("aria-labelledby", label.id);
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    name();
    new MutationObserver(name).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["aria-labelledby"],
    });
  });
})();
