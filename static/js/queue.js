// The live triage queue: new and changed alerts appear without reload; j/k/x/a/e/s keys.
(function () {
  "use strict";
  var table, rows, cursorIndex = -1, pollTimer;

  function allRows() { return Array.prototype.slice.call(rows.querySelectorAll("tr[data-id]")); }
  function selectedCount() {
    var n = rows.querySelectorAll("input[name=ids]:checked").length;
    var label = document.getElementById("selected-count");
    if (label) label.textContent = n + " selected";
    allRows().forEach(function (tr) {
      var box = tr.querySelector("input[name=ids]");
      tr.classList.toggle("selected", !!(box && box.checked));
    });
    return n;
  }
  function moveCursor(delta) {
    var list = allRows();
    if (!list.length) return;
    cursorIndex = Math.max(0, Math.min(list.length - 1, cursorIndex + delta));
    list.forEach(function (tr, i) { tr.classList.toggle("cursor", i === cursorIndex); });
    list[cursorIndex].scrollIntoView({ block: "nearest" });
  }
  function current() { var list = allRows(); return cursorIndex >= 0 ? list[cursorIndex] : null; }
  function submitAction(action) {
    var form = document.getElementById("bulk");
    var button = form && form.querySelector('[data-action="' + action + '"]');
    if (!button) return;
    if (!selectedCount()) {
      var tr = current();
      if (tr) tr.querySelector("input[name=ids]").checked = true;
    }
    if (selectedCount()) button.click();
  }

  function poll() {
    var url = table.dataset.pollUrl;
    url += (url.indexOf("?") >= 0 ? "&" : "?") + "after=" + encodeURIComponent(table.dataset.cursor);
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var body = doc.querySelector("tbody");
        if (!body) return;
        table.dataset.cursor = body.dataset.cursor || table.dataset.cursor;
        var incoming = Array.prototype.slice.call(body.querySelectorAll("tr[data-id]")).reverse();
        incoming.forEach(function (tr) {
          var old = document.getElementById(tr.id);
          var wasChecked = old && old.querySelector("input[name=ids]:checked");
          if (old) old.remove();
          if (tr.classList.contains("gone")) return; // left the queue (resolved, silenced, escalated)
          if (wasChecked) tr.querySelector("input[name=ids]").checked = true;
          rows.insertBefore(document.importNode(tr, true), rows.firstChild);
        });
        if (incoming.length) {
          var empty = document.getElementById("queue-empty");
          if (empty) empty.remove();
          cursorIndex = -1;
          selectedCount();
        }
        document.getElementById("live-state").textContent = "● live";
      })
      .catch(function () { document.getElementById("live-state").textContent = "○ reconnecting"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    table = document.getElementById("queue");
    if (!table) return;
    rows = document.getElementById("queue-rows");
    rows.addEventListener("change", selectedCount);
    pollTimer = window.setInterval(poll, 3000);
    var keys = window.Shieldwall.keys;
    keys.j = function () { moveCursor(1); };
    keys.k = function () { moveCursor(-1); };
    keys.x = function () {
      var tr = current();
      if (!tr) return;
      var box = tr.querySelector("input[name=ids]");
      box.checked = !box.checked;
      selectedCount();
    };
    keys.a = function () { submitAction("acknowledge"); };
    keys.e = function () { submitAction("escalate"); };
    keys.s = function () { submitAction("silence"); };
    keys.Enter = function () { var tr = current(); if (tr) window.location.assign(tr.dataset.url); };
  });
  window.addEventListener("beforeunload", function () { if (pollTimer) window.clearInterval(pollTimer); });
})();
