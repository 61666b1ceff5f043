(function () {
  var button = document.getElementById("copy-button");
  var field = document.getElementById("feed-url");
  var status = document.getElementById("copy-status");
  if (!button || !field) { return; }
  button.hidden = false;
  function done() { status.textContent = button.getAttribute("data-copied"); }
  button.addEventListener("click", function () {
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand("copy")) { done(); }
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  });
})();
