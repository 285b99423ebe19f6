// Shieldwall page behaviour. Loaded from /static/ only: the CSP forbids inline scripts.
(function () {
  "use strict";

  // CSRF header for every htmx request, from the meta tag.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
  });

  // Charts: figures are built in Python and passed with json_script; drawn here.
  // htmx drops <script type="application/json"> from swapped-in content, so the figures of
  // a response are read from its text before the swap and kept here by id (a DOMParser
  // document never runs scripts). Without this every chart went blank at the first refresh.
  var swappedFigures = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var html = event.detail.serverResponse;
    if (typeof html !== "string" || html.indexOf("application/json") < 0) return;
    var doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll('script[type="application/json"][id]').forEach(function (s) {
      swappedFigures[s.id] = s.textContent;
    });
  });

  function drawCharts(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.chart);
      var text = source ? source.textContent : swappedFigures[el.dataset.chart];
      if (!text) return;
      var fig = JSON.parse(text);
      var layout = Object.assign({
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: "#d8e0ea" }, margin: { l: 50, r: 20, t: 30, b: 40 }
      }, fig.layout || {});
      window.Plotly.newPlot(el, fig.data || [], layout, { displaylogo: false, responsive: true });
      el.dataset.drawn = "1";
      el.on && el.on("plotly_click", function (data) {
        var point = data.points && data.points[0];
        var link = point && point.customdata;
        if (typeof link === "string" && link.charAt(0) === "/") window.location.assign(link);
      });
    });
  }

  // Keyboard: pages register their keys with data-key attributes; ? and / are global.
  // Keys are shortcuts unless the engineer is typing text (a ticked checkbox keeps them working).
  var NOT_TEXT = /^(checkbox|radio|button|submit|reset|file|range|color)$/;
  function typing(event) {
    var t = event.target;
    if (!t) return false;
    if (t.tagName === "INPUT") return !NOT_TEXT.test(t.type);
    return t.isContentEditable || /^(TEXTAREA|SELECT)$/.test(t.tagName);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var help = document.getElementById("kbd-help");
    if (event.key === "Escape" && help && !help.hidden) { help.hidden = true; return; }
    if (typing(event)) return;
    if (event.key === "?") { if (help) help.hidden = !help.hidden; event.preventDefault(); return; }
    if (event.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { search.focus(); event.preventDefault(); }
      return;
    }
    var handler = window.Shieldwall && window.Shieldwall.keys[event.key];
    if (handler) { handler(event); event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-modal]")) {
      var modal = event.target.closest(".modal");
      if (modal) modal.hidden = true;
    }
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.dataset.confirm)) event.preventDefault();
  });

  window.Shieldwall = { keys: {}, drawCharts: drawCharts };
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function () { drawCharts(document); });
})();
