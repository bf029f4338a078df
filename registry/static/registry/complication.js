// The complication add page lists only the chosen patient's procedures and treated levels:
// choosing (or changing) the patient reloads the page with ?patient=<id>.
window.addEventListener("load", function () {
  var $ = window.django && window.django.jQuery;
  var patient = document.getElementById("id_patient");
  if (!$ || !patient || !/\/add\/$/.test(window.location.pathname)) { return; }
  $(patient).on("change", function () {
    var url = new URL(window.location.href);
    url.searchParams.set("patient", patient.value);
    window.location.assign(url.toString());
  });
});
