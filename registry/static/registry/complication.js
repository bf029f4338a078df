// The complication add page lists only the chosen patient's procedures and treated levels:
// a patient chosen by the user reloads the page with ?patient=<id>.
//
// Only the user's own choice reloads it: select2 fires a jQuery "change" on the patient box
// while it starts up (and Django's admin may fire more), so this listens to select2's
// "select2:select"/"select2:clear", which only a choice made in the box fires. The reload
// carries everything typed so far as the add page's initial values (the admin reads them
// from the query string), except the procedure and level, which belonged to the previous
// patient: nothing entered is lost.
(function () {
  "use strict";

  function carriedInput(form, patientId) {
    var url = new URL(window.location.href);
    // Only what the page was opened with (e.g. ?next=) survives, then the form's values.
    ["patient", "procedure", "treated_level"].forEach(function (name) {
      url.searchParams.delete(name);
    });
    new FormData(form).forEach(function (value, name) {
      if (typeof value !== "string" || value === "") { return; }
      if (["csrfmiddlewaretoken", "patient", "procedure", "treated_level"].indexOf(name) !== -1) {
        return;
      }
      if (name.charAt(0) === "_") { return; } // the save buttons
      url.searchParams.set(name, value);
    });
    if (patientId) { url.searchParams.set("patient", patientId); }
    return url.toString();
  }

  function start() {
    var $ = window.django && window.django.jQuery;
    var patient = document.getElementById("id_patient");
    if (!$ || !patient || !/\/add\/$/.test(window.location.pathname)) { return; }
    var loaded = patient.value;
    $(patient).on("select2:select select2:clear", function () {
      if (patient.value === loaded) { return; }
      loaded = patient.value;
      window.location.assign(carriedInput(patient.form, patient.value));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
