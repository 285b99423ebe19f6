// Mitigation pages: live countdowns to expiry, the propose form's kind-dependent fields,
// and a refresh while a mitigation is being applied. Loaded from /static/ (no inline scripts).
(function () {
  "use strict";

  function format(seconds) {
    if (seconds <= 0) return "expired (removal pending)";
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    var m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + "d " + h + "h " + pad(m) + "m";
    if (h) return h + "h " + pad(m) + "m " + pad(s) + "s";
    return m + "m " + pad(s) + "s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var at = Date.parse(el.dataset.expires);
      if (!isNaN(at)) {
        var left = Math.round((at - now) / 1000);
        el.textContent = format(left);
        el.classList.toggle("pill-warn", left > 0 && left < 300);
      }
    });
  }

  // Fields that matter for each kind of mitigation; the others are hidden, not removed.
  var KIND_FIELDS = {
    ip_access: ["value"],
    ip_list: ["mitigation_list"],
    rate_limit: ["expression", "rate_requests", "rate_period", "rate_burst", "rate_per_source", "mitigation_timeout"],
    waf_rule: ["expression"],
    firewall_rule: ["expression"]
  };
  var KIND_SPECIFIC = ["value", "mitigation_list", "expression", "rate_requests", "rate_period", "rate_burst",
    "rate_per_source", "mitigation_timeout"];

  function showKindFields(form) {
    var kind = form.querySelector("[name=kind]");
    if (!kind) return;
    var wanted = KIND_FIELDS[kind.value] || [];
    KIND_SPECIFIC.forEach(function (name) {
      form.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
        el.hidden = wanted.indexOf(name) === -1;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
    var form = document.getElementById("mitigation-form");
    if (form) {
      showKindFields(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "kind") showKindFields(form);
      });
    }
    var progress = document.querySelector("[data-refresh]");
    if (progress) window.setTimeout(function () { window.location.reload(); }, 1000 * Number(progress.dataset.refresh));
  });
  document.addEventListener("htmx:afterSettle", tick);
})();
