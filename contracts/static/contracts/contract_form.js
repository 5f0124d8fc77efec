// Quick choices on the contract pages: a button with data-fill="id_starts_at" fills the
// date (id_starts_at_0) and time (id_starts_at_1) inputs of that split field.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.tt-fill");
  if (!button) return;
  const field = button.dataset.fill;
  document.getElementById(`${field}_0`).value = button.dataset.date;
  document.getElementById(`${field}_1`).value = button.dataset.time;
});
