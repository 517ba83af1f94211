// ketaclinic live board: ticks the elapsed clocks and shows the stream's state. No PHI is stored.
(function () {
  "use strict";
  var board = document.querySelector(".board");
  if (!board) { return; }
  // Server clock minus browser clock, so elapsed times match the server's even on a skewed wall PC.
  var serverNow = Date.parse(board.getAttribute("data-server-now") || "");
  var offset = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function elapsedText(minutes) {  // same wording as chairside/board.py elapsed_text()
    if (minutes < 60) { return Math.max(minutes, 0) + " min"; }
    var rest = minutes % 60;
    return Math.floor(minutes / 60) + " h " + (rest < 10 ? "0" : "") + rest + " min";
  }

  function tick() {
    var now = Date.now() + offset;
    var clocks = board.querySelectorAll(".elapsed[data-since]");
    for (var i = 0; i < clocks.length; i++) {
      var since = Date.parse(clocks[i].getAttribute("data-since"));
      if (!isNaN(since)) { clocks[i].textContent = elapsedText(Math.floor((now - since) / 60000)); }
    }
  }

  function linkState(state, text) {
    var link = document.getElementById("board-link");
    if (link) { link.setAttribute("data-state", state); link.textContent = text; }
  }

  board.addEventListener("htmx:sseOpen", function () { linkState("live", "Live"); });
  board.addEventListener("htmx:sseError", function () { linkState("lost", "Connection lost: reconnecting…"); });
  board.addEventListener("htmx:sseClose", function () {
    linkState("lost", "Stopped");
    var banner = document.getElementById("board-banner");  // the expired board shows no alerts either
    if (banner) { banner.textContent = ""; }
  });
  board.addEventListener("htmx:afterSettle", tick);
  window.setInterval(tick, 15000);
  tick();
})();
