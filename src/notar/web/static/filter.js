// Optional: filter the tag table as you type. The page works without it.
(function () {
  "use strict";
  var box = document.querySelector(".filters");
  var input = document.getElementById("tag-filter");
  var table = document.getElementById("tags");
  if (!box || !input || !table) { return; }
  box.hidden = false;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  input.addEventListener("input", function () {
    var needle = input.value.toLowerCase();
    rows.forEach(function (row) {
      row.hidden = needle !== "" && (row.getAttribute("data-tag") || "").toLowerCase().indexOf(needle) < 0;
    });
  });
})();
