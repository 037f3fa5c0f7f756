// The template fields of the edit form and the playground: "Add message" appends a blank row
// (a copy of the last one, emptied), so a chat prompt can grow without a round trip.
const rows = document.getElementById("message-rows");

document.getElementById("add-message")?.addEventListener("click", () => {
  const last = rows.querySelector(".message-row:last-child");
  const row = last.cloneNode(true);
  row.querySelector("textarea").value = "";
  row.querySelector("select").value = "user";
  rows.appendChild(row);
  row.querySelector("textarea").focus();
});
