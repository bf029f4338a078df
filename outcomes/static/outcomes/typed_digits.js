// Paper answers typed as digits (outcomes.forms.StaffResponseForm, outcomes/typed_digits.py).
//
// As the nurse types in an instrument's box, the choices of its items follow and the chosen
// answers are read back under the box; a choice clicked afterwards rewrites its digit, so box
// and choices always agree. The server checks everything again (length, range) and, without
// this script, reads the answers back in one refused round trip: this script fills in what was
// shown (typed_checked) so a save after reading them back here goes through at once.
(function () {
  "use strict";

  var MARK = "-";

  function groups(box) {
    // The radio groups of the box's instrument, in the printed order (its fieldset's order).
    var names = [];
    box.closest("fieldset.module").querySelectorAll("input[type=radio]").forEach(function (r) {
      if (names.indexOf(r.name) === -1) { names.push(r.name); }
    });
    return names;
  }

  function radio(form, name, value) {
    return form.querySelector("input[type=radio][name='" + name + "'][value='" + value + "']");
  }

  function heading(form, name) {
    var first = form.querySelector("input[type=radio][name='" + name + "']");
    var row = first && first.closest(".form-row");
    var label = row && row.querySelector("legend, label");
    return label ? label.textContent.replace(/:\s*$/, "").trim() : name;
  }

  function normalise(text) { return text.replace(/\s+/g, ""); }

  // The answers typed (values as strings, "" for unanswered), or null when not acceptable.
  function parse(box, names) {
    var typed = normalise(box.value);
    if (typed.length !== names.length) { return null; }
    var values = [];
    for (var i = 0; i < typed.length; i++) {
      var ch = typed.charAt(i);
      if (ch === MARK && box.dataset.missingMark === MARK) { values.push(""); continue; }
      if (!/[0-9]/.test(ch) || !radio(box.form, names[i], ch)) { return null; }
      values.push(ch);
    }
    return values;
  }

  function readback(box) {
    var row = box.closest(".form-row");
    var list = row.querySelector("ul.typed-readback");
    if (!list) {
      list = document.createElement("ul");
      list.className = "typed-readback";
      box.insertAdjacentElement("afterend", list);
    }
    list.setAttribute("aria-live", "polite");
    return list;
  }

  function show(box, names, values) {
    var list = readback(box);
    list.textContent = "";
    if (!values) { return; }
    values.forEach(function (value, i) {
      var item = document.createElement("li");
      var answer = radio(box.form, names[i], value);
      var text = answer ? answer.closest("label").textContent.trim() : "";
      item.textContent = heading(box.form, names[i]) + ": " +
        (value === "" ? text : value + " – " + text);
      list.appendChild(item);
    });
  }

  function signature(boxes) {
    // The same text as outcomes.forms.typed_signature, when every filled box is acceptable.
    var parts = [];
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      var typed = normalise(box.value);
      if (typed && !parse(box, groups(box))) { return ""; }
      parts.push(box.name + "=" + typed);
    }
    return parts.join(";");
  }

  function start() {
    var boxes = ["id_eq5d_digits", "id_odi_digits"].map(function (id) {
      return document.getElementById(id);
    }).filter(Boolean);
    var checked = document.getElementById("id_typed_checked");
    if (boxes.length !== 2 || !checked) { return; }
    boxes.forEach(function (box) {
      var names = groups(box);
      function typed() {
        var values = parse(box, names);
        if (values) {
          values.forEach(function (value, i) {
            var answer = radio(box.form, names[i], value);
            if (answer) { answer.checked = true; }
          });
        }
        show(box, names, values);
        var shown = signature(boxes);
        if (shown) { checked.value = shown; }
      }
      box.addEventListener("input", typed);
      names.forEach(function (name, i) {
        box.form.querySelectorAll("input[type=radio][name='" + name + "']").forEach(function (r) {
          r.addEventListener("change", function () {
            var text = normalise(box.value);
            if (text.length !== names.length) { return; }
            var digit = r.value === "" ? (box.dataset.missingMark || "") : r.value;
            if (!digit) { return; }
            box.value = text.slice(0, i) + digit + text.slice(i + 1);
            typed();
          });
        });
      });
      if (normalise(box.value)) { typed(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
