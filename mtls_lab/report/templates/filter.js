(function () {
  "use strict";
  var controls = ["mode", "identity", "outcome"].map(function (name) {
    return document.getElementById("filter-" + name);
  });
  var mismatches = document.getElementById("filter-mismatches");
  var search = document.getElementById("filter-text");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-scenario]"));
  var shown = document.getElementById("shown");

  function keep(item) {
    for (var i = 0; i < controls.length; i++) {
      var wanted = controls[i].value;
      if (wanted && item.getAttribute("data-" + controls[i].name) !== wanted) { return false; }
    }
    if (mismatches.checked && item.getAttribute("data-match") !== "no") { return false; }
    var text = search.value.trim().toLowerCase();
    return !text || item.getAttribute("data-scenario").toLowerCase().indexOf(text) >= 0;
  }

  function apply() {
    var rows = 0;
    items.forEach(function (item) {
      var ok = keep(item);
      item.hidden = !ok;
      if (ok && item.tagName === "TR") { rows += 1; }
    });
    shown.textContent = String(rows);
  }

  function openTarget() {
    var target = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }

  controls.concat([mismatches, search]).forEach(function (control) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  });
  window.addEventListener("hashchange", openTarget);
  openTarget();
  apply();
}());
