// Print layout of a report (headless Chromium only): draw each chart, replace it with a
// PNG of itself, then mark the body ready so the PDF is printed with static images.
(function () {
  "use strict";

  function done(error) {
    if (error) document.body.setAttribute("data-charts-error", String(error && error.message || error));
    document.body.setAttribute("data-charts-ready", "1");
  }

  function toImage(el) {
    var source = document.getElementById(el.dataset.chart);
    if (!source) return Promise.resolve();
    var fig = JSON.parse(source.textContent);
    var height = (fig.layout && fig.layout.height) || 320;
    var width = el.clientWidth || 900;
    var layout = Object.assign({}, fig.layout || {}, {
      width: width, height: height,
      paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      font: { color: "#1f2933", size: 12 },
      margin: { l: 70, r: 70, t: 40, b: 50 }
    });
    return window.Plotly.newPlot(el, fig.data || [], layout, { staticPlot: true })
      .then(function (gd) { return window.Plotly.toImage(gd, { format: "png", width: width, height: height, scale: 2 }); })
      .then(function (url) {
        return new Promise(function (resolve, reject) {
          var img = new Image();
          img.onload = function () { resolve(); };
          img.onerror = function () { reject(new Error("chart image failed to load")); };
          img.alt = (fig.layout && fig.layout.title && fig.layout.title.text) || "chart";
          img.className = "chart-image";
          img.style.width = width + "px";
          img.src = url;
          window.Plotly.purge(el);
          el.innerHTML = "";
          el.appendChild(img);
        });
      });
  }

  function run() {
    if (!window.Plotly) { done("plotly.js did not load"); return; }
    var jobs = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) { jobs.push(toImage(el)); });
    Promise.all(jobs).then(function () { done(); }, function (error) { done(error); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
