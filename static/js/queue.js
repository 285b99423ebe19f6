// The live triage queue: new and changed alerts are placed where their urgency puts them,
// without losing the j/k cursor or the selection; alerts of one attack fold under the most
// urgent one (o expands); "select all matching" acts on the whole filter, not just the page.
// The alert under the cursor is shown in the detail pane beside the rows, which polls leave alone.
(function () {
  "use strict";
  var table, rows, cursorId = null, pollTimer, newCount = 0;
  var pane, paneId = null, paneSeq = 0, paneTimer, paneLoading = null;

  function allRows() { return Array.prototype.slice.call(rows.querySelectorAll("tr[data-id]")); }
  function visibleRows() { return allRows().filter(function (tr) { return !tr.hidden; }); }
  function leads() { return Array.prototype.slice.call(rows.querySelectorAll("tr.lead[data-id]")); }
  function members(lead) {
    return Array.prototype.slice.call(rows.querySelectorAll('tr[data-group="' + lead.dataset.id + '"]'));
  }
  function box(tr) { return tr.querySelector("input[name=ids]"); }
  function allMatching() { var el = document.getElementById("all-matching"); return el && el.value === "1"; }

  function selectedCount() {
    var n = rows.querySelectorAll("input[name=ids]:checked").length;
    var label = document.getElementById("selected-count");
    var total = document.getElementById("select-page");
    if (label) {
      label.textContent = allMatching() ? "all " + total.dataset.total + " matching selected" : n + " selected";
    }
    allRows().forEach(function (tr) { tr.classList.toggle("selected", !!(box(tr) && box(tr).checked)); });
    return allMatching() ? Number(total.dataset.total) : n;
  }
  function clearAllMatching() {
    var el = document.getElementById("all-matching");
    if (el) el.value = "";
    var button = document.getElementById("select-all-matching");
    if (button) button.hidden = true;
  }

  function paintCursor() {
    var list = visibleRows();
    list.forEach(function (tr) { tr.classList.toggle("cursor", tr.dataset.id === cursorId); });
  }
  function moveCursor(delta) {
    var list = visibleRows();
    if (!list.length) return;
    var index = list.findIndex(function (tr) { return tr.dataset.id === cursorId; });
    index = index < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, index + delta));
    cursorId = list[index].dataset.id;
    paintCursor();
    list[index].scrollIntoView({ block: "nearest" });
    showPane(cursorId, false);
  }

  // The pane is a server-rendered fragment (escaped there). A quick j j j asks once, for the
  // last row: the answer to an earlier selection that arrives late is dropped.
  function showPane(id, refresh) {
    if (!pane || !id || (id === paneId && !refresh)) return;
    paneId = id;
    var seq = ++paneSeq;
    window.clearTimeout(paneTimer);
    paneTimer = window.setTimeout(function () {
      var url = pane.dataset.paneUrl.replace("/0/", "/" + encodeURIComponent(id) + "/");
      paneLoading = fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : "";
        })
        .then(function (html) {
          if (html === null || seq !== paneSeq) return;
          if (html) {
            pane.innerHTML = html;
          } else {
            pane.textContent = "";
            var note = document.createElement("p");
            note.className = "muted";
            note.textContent = "This alert is no longer available.";
            pane.appendChild(note);
          }
          pane.dataset.alert = id;
          pane.dataset.loads = String(Number(pane.dataset.loads || 0) + 1);
        })
        .catch(function () { /* the next selection or poll asks again */ })
        .then(function () { if (seq === paneSeq) paneLoading = null; });
    }, refresh ? 0 : 80);
  }
  // Leaving the page from the keyboard (a, e, s, Enter): a pane not yet asked for is not needed,
  // one on its way is let finish (a few ms) rather than cut off by the navigation.
  function thenLeave(go) {
    window.clearTimeout(paneTimer);
    (paneLoading || Promise.resolve()).then(go, go);
  }
  function current() { return cursorId ? document.getElementById("alert-" + cursorId) : null; }
  function submitAction(action) {
    var form = document.getElementById("bulk");
    var button = form && form.querySelector('[data-action="' + action + '"]');
    if (!button) return;
    if (!selectedCount()) {
      var tr = current();
      if (tr) { box(tr).checked = true; tickGroup(tr); }
    }
    if (selectedCount()) thenLeave(function () { button.click(); });
  }
  // A folded group acts as one: ticking its lead ticks the alerts under it.
  function tickGroup(tr) {
    if (!tr.classList.contains("lead")) return;
    members(tr).forEach(function (m) { box(m).checked = box(tr).checked; });
  }
  function setGroupCount(lead) {
    var button = lead.querySelector("[data-expand]");
    if (!button) return;
    var n = members(lead).length;
    button.querySelector("span").textContent = String(n);
    button.hidden = n === 0;
  }
  function toggleGroup(lead) {
    if (!lead) return;
    if (lead.classList.contains("member")) lead = document.getElementById("alert-" + lead.dataset.group);
    var list = members(lead);
    var open = list.length && list[0].hidden;
    list.forEach(function (m) { m.hidden = !open; });
    lead.classList.toggle("expanded", !!open);
  }

  // The queue's order (urgency, then last seen, then id, all descending) as a comparison.
  function before(a, b) {
    var ua = Number(a.dataset.urgency), ub = Number(b.dataset.urgency);
    if (ua !== ub) return ua > ub;
    var sa = Number(a.dataset.seen), sb = Number(b.dataset.seen);
    if (sa !== sb) return sa > sb;
    return Number(a.dataset.id) > Number(b.dataset.id);
  }
  function makeLead(tr) {
    tr.classList.remove("member");
    tr.classList.add("lead");
    tr.removeAttribute("data-group");
    tr.hidden = false;
  }
  function place(tr) {
    var attack = tr.dataset.attack;
    var lead = attack && rows.querySelector('tr.lead[data-attack="' + attack + '"]');
    if (lead && !before(tr, lead)) {
      // Under the most urgent alert of its attack, folded unless that group is open.
      tr.classList.remove("lead");
      tr.classList.add("member");
      tr.dataset.group = lead.dataset.id;
      var group = members(lead);
      tr.hidden = !lead.classList.contains("expanded");
      var after = group.length ? group[group.length - 1] : lead;
      after.parentNode.insertBefore(tr, after.nextSibling);
      setGroupCount(lead);
      return true;
    }
    makeLead(tr);
    var followers = lead ? members(lead).concat([lead]) : [];
    var next = leads().find(function (other) { return before(tr, other); });
    // A row that sorts before this page or after it belongs to another page of the queue.
    if (!table.dataset.firstPage && (!next || next === leads()[0])) return false;
    if (!next && document.getElementById("queue-next")) return false;
    if (next) rows.insertBefore(tr, next); else rows.appendChild(tr);
    // The old lead of its attack (less urgent now) folds under the new one with its members.
    followers.forEach(function (m) {
      if (m === tr) return;
      makeLead(m);
      place(m);
    });
    setGroupCount(tr);
    return true;
  }
  function showNew() {
    var marker = document.getElementById("queue-new");
    if (!marker) return;
    marker.querySelector("span").textContent = String(newCount);
    marker.hidden = newCount === 0;
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
        var incoming = Array.prototype.slice.call(body.querySelectorAll("tr[data-id]"));
        // The alert in the pane changed (a repeat, acknowledged, resolved): show it as it is now.
        if (paneId && body.querySelector('tr[data-id="' + paneId + '"]')) showPane(paneId, true);
        incoming.forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          var wasChecked = old && box(old) && box(old).checked;
          if (old) {
            var orphans = old.classList.contains("lead") ? members(old) : [];
            var group = old.dataset.group && document.getElementById("alert-" + old.dataset.group);
            old.remove();
            orphans.forEach(function (m) { makeLead(m); m.remove(); place(m); });
            if (group) setGroupCount(group);
          }
          if (fresh.classList.contains("gone")) return; // left the queue (resolved, silenced, escalated)
          var tr = document.importNode(fresh, true);
          if (wasChecked || allMatching()) box(tr).checked = true;
          if (old) tr.classList.remove("fresh");
          if (place(tr) && !old) newCount += 1;
        });
        if (incoming.length) {
          var empty = document.getElementById("queue-empty");
          if (empty && rows.querySelector("tr[data-id]")) empty.remove();
          if (cursorId && !document.getElementById("alert-" + cursorId)) cursorId = null;
          paintCursor();
          selectedCount();
          showNew();
        }
        table.dataset.polls = String(Number(table.dataset.polls || 0) + 1);
        document.getElementById("live-state").textContent = "● live";
      })
      .catch(function () { document.getElementById("live-state").textContent = "○ reconnecting"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    table = document.getElementById("queue");
    if (!table) return;
    rows = document.getElementById("queue-rows");
    rows.addEventListener("change", function (event) {
      var tr = event.target.closest("tr[data-id]");
      if (tr) tickGroup(tr);
      if (event.target.name === "ids" && !event.target.checked) clearAllMatching();
      selectedCount();
    });
    pane = document.getElementById("queue-pane");
    rows.addEventListener("click", function (event) {
      var button = event.target.closest("[data-expand]");
      if (button) { toggleGroup(document.getElementById("alert-" + button.dataset.expand)); return; }
      var tr = event.target.closest("tr[data-id]");
      // A click on the row selects it for the pane; its link, checkbox and buttons keep their own job.
      if (!tr || event.target.closest("a, input, button, label, select")) return;
      cursorId = tr.dataset.id;
      paintCursor();
      showPane(cursorId, false);
    });
    var page = document.getElementById("select-page");
    var everything = document.getElementById("select-all-matching");
    if (page) {
      page.addEventListener("change", function () {
        allRows().forEach(function (tr) { box(tr).checked = page.checked; });
        if (!page.checked) clearAllMatching();
        else if (everything && Number(page.dataset.total) > allRows().length) everything.hidden = false;
        selectedCount();
      });
    }
    if (everything) {
      everything.addEventListener("click", function () {
        document.getElementById("all-matching").value = "1";
        everything.hidden = true;
        selectedCount();
      });
    }
    var marker = document.getElementById("queue-new");
    if (marker) {
      marker.addEventListener("click", function () {
        var first = rows.querySelector("tr.fresh:not([hidden])");
        if (first) { cursorId = first.dataset.id; paintCursor(); first.scrollIntoView({ block: "nearest" }); }
        newCount = 0;
        showNew();
      });
    }
    pollTimer = window.setInterval(poll, Number(table.dataset.pollMs) || 3000);
    var keys = window.Shieldwall.keys;
    keys.j = function () { moveCursor(1); };
    keys.k = function () { moveCursor(-1); };
    keys.o = function () { toggleGroup(current()); };
    keys.x = function () {
      var tr = current();
      if (!tr) return;
      box(tr).checked = !box(tr).checked;
      tickGroup(tr);
      if (!box(tr).checked) clearAllMatching();
      selectedCount();
    };
    keys.a = function () { submitAction("acknowledge"); };
    keys.e = function () { submitAction("escalate"); };
    keys.s = function () { submitAction("silence"); };
    keys.Enter = function () {
      var tr = current();
      if (tr) thenLeave(function () { window.location.assign(tr.dataset.url); });
    };
  });
  window.addEventListener("beforeunload", function () { if (pollTimer) window.clearInterval(pollTimer); });
})();
