// NexusAI — the little JavaScript the pages use beyond htmx: keyboard shortcuts,
// live updates from the change log (SSE), toasts for failed requests.
(function () {
  "use strict";
  var CHANGED = "nexus:changed";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function toast(message, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast toast-" + (kind || "info");
    t.setAttribute("role", kind === "error" ? "alert" : "status");
    t.textContent = message;
    box.appendChild(t);
  }

  // Toasts leave by themselves after a few seconds.
  new MutationObserver(function (records) {
    records.forEach(function (r) {
      r.addedNodes.forEach(function (n) {
        if (n.nodeType === 1 && n.classList.contains("toast")) {
          setTimeout(function () { n.remove(); }, n.classList.contains("toast-error") ? 8000 : 4000);
        }
      });
    });
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(function (n) {
      setTimeout(function () { n.remove(); }, 5000);
    });
  });

  // A select marked data-autosubmit sends its form when it changes (the company switcher).
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
  });

  // A request the server refused: show its message.
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr, msg = xhr.responseText || ("The server answered " + xhr.status);
    try { var j = JSON.parse(msg); msg = (j.error && j.error.message) || msg; } catch (_) { /* plain text */ }
    toast(msg, "error");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The appliance cannot be reached. Check the network and try again.", "error");
  });

  // The top bar's search: arrows move through the suggestions, Enter opens the chosen
  // one (or the search page), Esc closes them; Ctrl-K (or Cmd-K) opens it anywhere.
  function suggestions() { return Array.prototype.slice.call(document.querySelectorAll("#search-suggest .suggest-item")); }
  function setOpen(open) {
    var box = document.getElementById("search-suggest"), input = document.getElementById("global-search");
    if (!box || !input) return;
    box.classList.toggle("open", open);
    input.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "search-suggest") setOpen(suggestions().length > 0);
  });
  document.addEventListener("keydown", function (e) {
    var input = document.getElementById("global-search");
    if ((e.ctrlKey || e.metaKey) && (e.key === "k" || e.key === "K")) {
      if (input) { e.preventDefault(); input.focus(); input.select(); }
      return;
    }
    if (!input || document.activeElement !== input) return;
    var items = suggestions(), at = items.findIndex(function (a) { return a.classList.contains("chosen"); });
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!items.length) return;
      e.preventDefault();
      if (at >= 0) items[at].classList.remove("chosen");
      at = e.key === "ArrowDown" ? (at + 1) % items.length : (at <= 0 ? items.length - 1 : at - 1);
      items[at].classList.add("chosen");
      if (!items[at].id) items[at].id = "suggest-" + at;
      input.setAttribute("aria-activedescendant", items[at].id || "");
      items[at].scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter" && at >= 0) {
      e.preventDefault();
      window.location = items[at].getAttribute("href");
    } else if (e.key === "Escape") {
      setOpen(false);
    }
  });
  document.addEventListener("click", function (e) {
    if (!e.target.closest || !e.target.closest("form.search")) setOpen(false);
  });

  // Keyboard: "/" search, "n" new, "e" edit, "a" accept, Enter opens the focused row, Esc cancels.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var active = document.activeElement;
    if (e.key === "Escape") {
      var cancel = active && active.closest && active.closest("form.inline");
      if (cancel) { var b = cancel.querySelector("[data-cancel]"); if (b) b.click(); }
      return;
    }
    if (typing(active)) return;
    if (e.key === "/") {
      var s = document.querySelector("[data-shortcut=search]") || document.getElementById("global-search");
      if (s) { e.preventDefault(); s.focus(); s.select(); }
    } else if (e.key === "n") {
      var n = document.querySelector("[data-shortcut=new]");
      if (n) { e.preventDefault(); n.click(); }
    } else if (e.key === "e") {
      var row = active && active.closest && active.closest("tr[data-live-id]");
      var cell = row && row.querySelector("td.editable");
      if (cell) { e.preventDefault(); htmx.trigger(cell, "dblclick"); return; }
      var ed = document.querySelector("[data-shortcut=edit]") ||
        document.querySelector("#record-form input:not([type=hidden]), #record-form select, #record-form textarea");
      if (ed) { e.preventDefault(); ed.focus(); if (ed.select) ed.select(); }
    } else if (e.key === "a") {
      // Accept: the focused row's [data-shortcut=accept] button, else the first one.
      var own = active && active.closest && active.closest("tr");
      var acc = (own && own.querySelector("[data-shortcut=accept]")) || document.querySelector("[data-shortcut=accept]");
      if (acc) { e.preventDefault(); acc.click(); }
    } else if (e.key === "Enter" && active && active.matches && active.matches("tr[data-href]")) {
      window.location = active.getAttribute("data-href");
    } else if ((e.key === "j" || e.key === "k") && active && active.matches && active.matches("tr[data-href]")) {
      var next = e.key === "j" ? active.nextElementSibling : active.previousElementSibling;
      if (next && next.matches("tr[data-href]")) { e.preventDefault(); next.focus(); }
    }
  });

  // A file input with data-fill="ID" loads the chosen text file into textarea #ID, so a
  // statement file is read in the browser and sent as the form's text (no multipart).
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("input[type=file][data-fill]") || !input.files.length) return;
    var target = document.getElementById(input.getAttribute("data-fill"));
    var file = input.files[0];
    if (!target) return;
    if (file.size > 400 * 1024) { toast(file.name + " is too large (over 400 KB) to import here; send it to the API instead.", "error"); return; }
    file.text().then(function (text) { target.value = text; }, function () {
      toast(file.name + " could not be read.", "error");
    });
  });

  // Documents: a file dropped on (or chosen in) a .dropzone is sent as the body of a
  // POST to its data-upload address, one file after another. The answer replaces the
  // record's documents panel, or (data-reload) the page follows HX-Redirect.
  function upload(zone, files) {
    var list = Array.prototype.slice.call(files);
    var csrf = document.body.dataset.csrf;
    zone.classList.add("busy");
    var next = function () {
      var file = list.shift();
      if (!file) { zone.classList.remove("busy"); return; }
      var url = zone.getAttribute("data-upload");
      url += (url.indexOf("?") < 0 ? "?" : "&") + "name=" + encodeURIComponent(file.name);
      fetch(url, { method: "POST", body: file, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "HX-Request": "true", "Content-Type": "application/octet-stream" } })
        .then(function (res) {
          return res.text().then(function (text) {
            if (!res.ok) { toast(file.name + ": " + text, "error"); return next(); }
            var go = res.headers.get("HX-Redirect");
            if (go) { window.location.assign(go); return; }
            var panel = zone.closest("#documents");
            if (panel) {
              panel.outerHTML = text;
              panel = document.getElementById("documents");
              zone = panel.querySelector(".dropzone") || zone;
            }
            toast(file.name + " attached", "success");
            next();
          });
        }, function () {
          toast("The appliance cannot be reached. Check the network and try again.", "error");
          zone.classList.remove("busy");
        });
    };
    next();
  }
  document.addEventListener("change", function (e) {
    var input = e.target;
    var zone = input.closest && input.closest(".dropzone[data-upload]");
    if (!zone || !input.files || !input.files.length) return;
    upload(zone, input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (kind) {
    document.addEventListener(kind, function (e) {
      var zone = e.target.closest && e.target.closest(".dropzone[data-upload]");
      if (!zone) return;
      e.preventDefault();
      zone.classList.add("over");
    });
  });
  document.addEventListener("dragleave", function (e) {
    var zone = e.target.closest && e.target.closest(".dropzone");
    if (zone) zone.classList.remove("over");
  });
  document.addEventListener("drop", function (e) {
    var zone = e.target.closest && e.target.closest(".dropzone[data-upload]");
    if (!zone) return;
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) upload(zone, e.dataTransfer.files);
  });

  document.addEventListener("click", function (e) {
    var c = e.target.closest && e.target.closest("[data-cancel]");
    if (c) {
      e.preventDefault();
      htmx.ajax("GET", c.getAttribute("data-cancel"), { target: c.closest("tr"), swap: "outerHTML" });
    }
  });

  // Live updates: the change log, followed over SSE. Rows and records on screen
  // refresh themselves; lists reload when something is created or deleted.
  function connect() {
    if (!document.body || !document.body.dataset.csrf || !window.EventSource) return;
    var source = new EventSource("/events");
    source.addEventListener("change", function (ev) {
      var c;
      try { c = JSON.parse(ev.data); } catch (_) { return; }
      var sel = '[data-live-entity="' + c.entity + '"][data-live-id="' + c.id + '"]';
      var shown = document.querySelectorAll(sel);
      shown.forEach(function (el) {
        if (el.matches("tr") && el.querySelector("form.inline")) return; // being edited here
        if (el.dataset.version && Number(el.dataset.version) >= c.version) return; // our own save
        htmx.trigger(el, CHANGED);
        if (el.matches("tr")) { el.classList.add("flash"); }
      });
      if (c.op !== "update" || shown.length === 0) {
        document.querySelectorAll('[data-live-list="' + c.entity + '"]').forEach(function (el) {
          htmx.trigger(el, CHANGED);
        });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", connect);
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.matches && e.detail.target.matches("tr")) {
      e.detail.target.classList.add("flash");
    }
  });
})();
