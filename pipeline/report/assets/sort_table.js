// Sortable, filterable tables: click a header to sort by it (again to reverse); cells sort by
// their data-sort (numbers) or text; empty values stay last in either direction.
(function () {
  "use strict";
  function key(cell, numeric) {
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    if (raw === "") return null;
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  }
  function sortBy(table, column, direction) {
    const header = table.tHead.rows[0].cells[column];
    const numeric = header.dataset.type === "number";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map((row) => [key(row.cells[column], numeric), row]);
    rows.sort((a, b) => {
      if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null);
      return (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) * direction;
    });
    const fragment = document.createDocumentFragment();
    for (const [, row] of rows) fragment.appendChild(row);
    body.appendChild(fragment);
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
      th.addEventListener("click", () => sortBy(table, column, th.getAttribute("aria-sort") === "ascending" ? -1 : 1));
    });
    const initial = table.dataset.sortColumn;
    if (initial !== undefined) sortBy(table, parseInt(initial, 10), 1);
  }
  for (const input of document.querySelectorAll("input.filter")) {
    const table = document.getElementById(input.dataset.table);
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
    });
  }
  window.sortTable = sortBy;
})();
