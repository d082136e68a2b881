// Small glue for htmx: CSRF on every request, visible errors, confirmations.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Flask-WTF checks every POST; htmx requests carry the token as a header instead of a form field.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  function showFlash(message, kind) {
    var box = document.getElementById("flashes");
    if (!box) return;
    // A failing poll repeats every few seconds; one visible copy of its message is enough.
    var shown = Array.prototype.some.call(box.children, function (el) { return el.textContent === message; });
    if (shown) return;
    var item = document.createElement("div");
    item.className = "flash flash-" + (kind || "error");
    item.setAttribute("role", "alert");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
  }

  function errorText(xhr) {
    var text = "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var node = doc.querySelector(".fragment-error, .error-page .lead, [role=alert]");
      text = node ? node.textContent.trim() : "";
    } catch (e) { text = ""; }
    return "The request failed (" + xhr.status + ")" + (text ? ": " + text : ".");
  }

  // htmx 2 does not swap error responses; without this a failed click would look like nothing happened.
  document.addEventListener("htmx:responseError", function (event) {
    showFlash(errorText(event.detail.xhr), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    showFlash("phoneapp could not be reached. Check the connection and try again.", "error");
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // A token is shown once; copying must not depend on selecting 40-odd characters by hand.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var selectIt = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    };
    // The clipboard API exists only on https and localhost; elsewhere leave the text selected for Ctrl+C.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      }, selectIt);
    } else {
      selectIt();
      button.textContent = "Selected: press Ctrl+C";
    }
  });

  // "3 min ago" written by the server goes stale on parts that are not polled; the same words, kept current.
  function timeAgo(seconds) {
    if (seconds < 45) return "just now";
    if (seconds >= 86400) { var days = Math.floor(seconds / 86400); return days + (days === 1 ? " day ago" : " days ago"); }
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h ago";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min ago";
    return "just now";
  }
  function refreshRelativeTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach(function (node) {
      var moment = Date.parse(node.getAttribute("datetime"));
      if (!isNaN(moment)) node.textContent = timeAgo(Math.max(0, (now - moment) / 1000));
    });
  }
  setInterval(refreshRelativeTimes, 30000);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".flash-success").forEach(function (item) {
      setTimeout(function () { item.classList.add("flash-hide"); }, 6000);
    });
  });
})();
