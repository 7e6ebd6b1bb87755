// Keyline iframe glue. Pages render completely without it: every section is
// in the HTML and long lists expand with native <details>. It only connects
// the page to the host (Jira or Confluence, through all.js): it follows the
// host's light or dark theme, and tells the host how tall the content is,
// again whenever sections expand or collapse.
(function () {
  "use strict";
  var themed = false;

  function ap() {
    return window.AP || null;
  }

  // Keyline.contextToken asks the host for a context token, for the page
  // scripts that call Keyline's API (configure.js, metrics.js). The
  // callback form works with every all.js; a promise it may return as well
  // is only watched for rejection.
  window.Keyline = window.Keyline || {};
  window.Keyline.contextToken = function (AP) {
    return new Promise(function (resolve, reject) {
      var r = AP.context.getToken(function (t) {
        if (t) {
          resolve(t);
        } else {
          reject(new Error("Jira gave no token; reload the page and try again."));
        }
      });
      if (r && typeof r.then === "function") {
        r.then(null, function () {});
      }
    });
  };

  // The host sets data-color-mode on <html> and keeps it current; until it
  // does, or without all.js, the CSS follows prefers-color-scheme.
  function theme() {
    var AP = ap();
    if (themed || !AP || !AP.theming || typeof AP.theming.initializeTheming !== "function") {
      return;
    }
    themed = true;
    try {
      AP.theming.initializeTheming();
    } catch (e) {
      // A host without theming keeps the browser's colour scheme.
    }
  }

  function resize() {
    var AP = ap();
    if (AP && typeof AP.resize === "function") {
      var el = document.querySelector(".ac-content");
      var h = el ? Math.ceil(el.getBoundingClientRect().height) + 8 : document.body.scrollHeight;
      AP.resize("100%", h + "px");
    }
  }

  function start() {
    theme();
    resize();
  }

  // all.js loads asynchronously, so AP may appear only by the load event.
  document.addEventListener("DOMContentLoaded", start);
  window.addEventListener("load", start);
  document.addEventListener("toggle", resize, true);
  if (window.ResizeObserver) {
    document.addEventListener("DOMContentLoaded", function () {
      var el = document.querySelector(".ac-content");
      if (el) { new ResizeObserver(resize).observe(el); }
    });
  }
})();
