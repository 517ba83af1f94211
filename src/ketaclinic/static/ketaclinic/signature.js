// ketaclinic: the signature box on the consent signing page. Plain JavaScript, no build step.
// The drawing lives only in the canvas and is sent with the form as a PNG; nothing is written to browser
// storage (no localStorage, sessionStorage, IndexedDB or cache), so nothing stays on the tablet.
(function () {
  "use strict";
  var canvas = document.getElementById("signature-pad");
  var form = document.getElementById("consent-sign-form");
  if (!canvas || !form) { return; }
  var field = document.getElementById("signature-data");
  var empty = document.getElementById("signature-empty");
  var ctx = canvas.getContext("2d");
  var drawing = false;
  var strokes = 0;
  var last = null;

  function setUp() {
    // Draw at the screen's pixel density so the signature is sharp, in a box as wide as the form.
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 600;
    var height = canvas.clientHeight || 200;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    strokes = 0;
  }

  function point(event) {
    var box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    last = point(event);
    ctx.beginPath();
    ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fill();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) { return; }
    event.preventDefault();
    var next = point(event);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(next.x, next.y);
    ctx.stroke();
    last = next;
  });
  function stop() {
    if (drawing) { strokes += 1; if (empty) { empty.hidden = true; } }
    drawing = false;
  }
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  canvas.addEventListener("pointerleave", stop);

  document.getElementById("signature-clear").addEventListener("click", function () {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    field.value = "";
    strokes = 0;
  });

  form.addEventListener("submit", function (event) {
    if (strokes === 0) {
      event.preventDefault();
      if (empty) { empty.hidden = false; }
      canvas.focus();
      return;
    }
    field.value = canvas.toDataURL("image/png");
  });

  setUp();
})();
