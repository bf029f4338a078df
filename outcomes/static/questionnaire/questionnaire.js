// Progressive enhancement: a slider beside each 0-100 number field. The number field stays
// the real, labelled input (keyboard and screen readers use it); the slider only sets it.
// Without JavaScript the page works with the number fields alone.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-slider]").forEach(function (number) {
    var slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = "100";
    slider.step = "1";
    slider.value = number.value === "" ? "50" : number.value;
    slider.setAttribute("aria-hidden", "true");
    slider.tabIndex = -1;
    slider.className = number.value === "" ? "untouched" : "";
    // Until touched the slider has no handle and says so: 50 is not an answer.
    var status = document.createElement("p");
    status.className = "not-answered";
    status.textContent = number.getAttribute("data-not-answered") || "";
    status.hidden = number.value !== "";
    function touched() {
      slider.className = "";
      status.hidden = true;
    }
    slider.addEventListener("input", function () {
      number.value = slider.value;
      touched();
    });
    number.addEventListener("input", function () {
      if (number.value !== "") { slider.value = number.value; touched(); }
    });
    number.insertAdjacentElement("afterend", slider);
    slider.insertAdjacentElement("afterend", status);
  });
  var errors = document.getElementById("errors");
  if (errors) { errors.focus(); }
});
