/* Keyline preview host page: plays Jira and Confluence for the framed pages.
   It answers the preview's AP stub (app/preview/assets/all.js) the way the
   products answer all.js: resize requests set the iframe's height, token
   requests get a fresh context token signed by the preview server. Every call
   is listed on the page and kept in window.__keylinePreview for the tests. */
(function () {
  "use strict";
  var state = { calls: [], resized: {} };
  window.__keylinePreview = state;

  var keylineOrigin = document.body.getAttribute("data-keyline-origin");
  var asViewer = document.body.getAttribute("data-as") === "viewer";
  var frames = Array.prototype.slice.call(document.querySelectorAll("iframe[data-frame]"));
  var log = document.getElementById("ap-log");
  var empty = document.getElementById("ap-log-empty");

  frames.forEach(function (f) {
    f.style.height = f.getAttribute("data-height") || "200px";
    f.addEventListener("load", function () {
      window.setTimeout(function () { measure(f); }, 1000);
    });
  });

  // measure is the demo's fallback when no all.js reached a frame (a normal
  // browser outside the tests, where Atlassian's CDN is unreachable or its
  // all.js finds no Jira): when the frame shares this page's origin, as under
  // keyline demo, the host reads its height itself and follows it. Jira
  // cannot do this, so it never counts as a resize call; across origins, as
  // in the browser tests, it does nothing.
  function measure(f) {
    var id = f.getAttribute("data-frame");
    if (state.resized[id]) {
      return;
    }
    var doc;
    try {
      doc = f.contentDocument;
    } catch (e) {
      return;
    }
    if (!doc || !doc.documentElement) {
      return;
    }
    var el = doc.querySelector(".ac-content") || doc.body;
    if (!el) {
      return;
    }
    function fit() {
      if (!state.resized[id]) {
        f.style.height = Math.ceil(el.getBoundingClientRect().height) + 16 + "px";
      }
    }
    fit();
    if (window.ResizeObserver) {
      new ResizeObserver(fit).observe(el);
    }
    state.measured = (state.measured || []).concat(id);
  }

  // Frames that asked for theming follow the host's colour scheme, as
  // Jira's theme switch reaches apps through all.js.
  var dark = window.matchMedia("(prefers-color-scheme: dark)");
  var themed = [];
  function mode() {
    return dark.matches ? "dark" : "light";
  }
  dark.addEventListener("change", function () {
    themed.forEach(function (f) {
      if (f.contentWindow) {
        f.contentWindow.postMessage({ type: "keyline-preview-ap-theme", value: mode() }, keylineOrigin);
      }
    });
  });

  function frameOf(source) {
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === source) {
        return frames[i];
      }
    }
    return null;
  }

  function record(frame, method, args) {
    var id = frame.getAttribute("data-frame");
    state.calls.push({ frame: id, method: method, args: args, at: Date.now() });
    if (!log) {
      return;
    }
    if (empty) {
      empty.hidden = true;
    }
    var li = document.createElement("li");
    var code = document.createElement("code");
    code.textContent = "AP." + method + "(" + args.map(function (a) { return JSON.stringify(a); }).join(", ") + ")";
    li.textContent = id + " ";
    li.appendChild(code);
    log.appendChild(li);
    // Keep the list short: it is a window on the traffic, not a record.
    while (log.children.length > 200) {
      log.removeChild(log.firstChild);
    }
  }

  function px(value) {
    var m = /^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$/.exec(String(value));
    return m ? Math.ceil(parseFloat(m[1])) : 0;
  }

  function reply(source, id, value, error) {
    if (!id) {
      return;
    }
    var msg = { type: "keyline-preview-ap-reply", id: id };
    if (error) {
      msg.error = error;
    } else {
      msg.value = value;
    }
    source.postMessage(msg, keylineOrigin);
  }

  window.addEventListener("message", function (e) {
    // Only Keyline's origin, and only from one of our own iframes.
    if (e.origin !== keylineOrigin) {
      return;
    }
    var frame = frameOf(e.source);
    var d = e.data;
    if (!frame || !d || d.type !== "keyline-preview-ap" || typeof d.method !== "string") {
      return;
    }
    var args = Array.isArray(d.args) ? d.args : [];
    record(frame, d.method, args);
    switch (d.method) {
      case "resize":
        var h = px(args[1]);
        if (h > 0) {
          frame.style.height = h + "px";
          state.resized[frame.getAttribute("data-frame")] = h;
        }
        break;
      case "sizeToParent":
        frame.style.height = Math.max(window.innerHeight - 120, 200) + "px";
        break;
      case "context.getToken":
        var q = "frame=" + encodeURIComponent(frame.getAttribute("data-frame")) + (asViewer ? "&as=viewer" : "");
        fetch("/preview/token?" + q, { credentials: "same-origin", cache: "no-store" })
          .then(function (r) {
            if (!r.ok) {
              throw new Error("token request failed: " + r.status);
            }
            return r.json();
          })
          .then(function (j) { reply(e.source, d.id, j.token); },
            function (err) { reply(e.source, d.id, null, String(err && err.message || err)); });
        break;
      case "context.getContext":
        reply(e.source, d.id, JSON.parse(frame.getAttribute("data-context") || "{}"));
        break;
      case "navigator.getLocation":
        reply(e.source, d.id, window.location.href);
        break;
      case "theming.initializeTheming":
        themed.push(frame);
        reply(e.source, d.id, mode());
        break;
      default:
        reply(e.source, d.id, null);
    }
  });
})();
