// Silence editor: matcher rows built from the prefilled JSON; htmx previews on every change.
(function () {
  "use strict";
  var OPS = ["=", "!=", "=~", "!~"];

  function option(value, selected) {
    var o = document.createElement("option");
    o.value = value; o.textContent = value; o.selected = value === selected;
    return o;
  }
  function addRow(box, fields, matcher) {
    matcher = matcher || { field: fields[0], op: "=", value: "" };
    var row = document.createElement("div");
    row.className = "toolbar matcher";
    var field = document.createElement("input");
    field.name = "m_field"; field.value = matcher.field; field.setAttribute("list", "matcher-fields"); field.size = 14;
    var op = document.createElement("select");
    op.name = "m_op";
    OPS.forEach(function (o) { op.appendChild(option(o, matcher.op)); });
    var value = document.createElement("input");
    value.name = "m_value"; value.value = matcher.value; value.size = 30;
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "btn"; remove.textContent = "×";
    remove.addEventListener("click", function () {
      row.remove();
      document.getElementById("silence-form").dispatchEvent(new Event("change"));
    });
    row.append(field, op, value, remove);
    box.appendChild(row);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("matchers");
    if (!box) return;
    var fields = box.dataset.fields.split(",");
    var list = document.createElement("datalist");
    list.id = "matcher-fields";
    fields.forEach(function (f) { list.appendChild(option(f)); });
    box.appendChild(list);
    var hidden = document.getElementById("matchers-json");
    var initial = [];
    try { initial = JSON.parse(hidden.value || "[]"); } catch (e) { initial = []; }
    if (!initial.length) initial = [null];
    initial.forEach(function (m) { addRow(box, fields, m); });
    hidden.value = "[]";
    document.getElementById("add-matcher").addEventListener("click", function () { addRow(box, fields); });
    // Preview: which open alerts these matchers would silence, on every change.
    var form = document.getElementById("silence-form");
    var target = document.getElementById("silence-preview");
    var timer = null;
    function preview() {
      var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      fetch(form.dataset.previewUrl, {
        method: "POST", body: new FormData(form), credentials: "same-origin", headers: { "X-CSRFToken": csrf }
      }).then(function (r) { return r.text(); }).then(function (html) { target.innerHTML = html; });
    }
    function later() { window.clearTimeout(timer); timer = window.setTimeout(preview, 300); }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    preview();
  });
})();
