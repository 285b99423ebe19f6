// SLA clocks count down live from the seconds left when the page was rendered.
(function () {
  "use strict";
  function format(seconds) {
    var s = Math.abs(Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var text = (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
    return seconds >= 0 ? text + " left" : text + " over";
  }
  function tick(clocks, started) {
    var passed = (Date.now() - started) / 1000;
    clocks.forEach(function (el) {
      var remaining = parseFloat(el.dataset.slaRemaining) - passed;
      var out = el.querySelector("[data-sla-countdown]");
      if (out) out.textContent = format(remaining);
      if (remaining < 0) { el.classList.remove("sla-ok", "sla-at_risk"); el.classList.add("sla-breached"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var clocks = Array.prototype.slice.call(document.querySelectorAll("[data-sla-remaining]"));
    if (!clocks.length) return;
    var started = Date.now();
    tick(clocks, started);
    window.setInterval(function () { tick(clocks, started); }, 1000);
  });
})();
