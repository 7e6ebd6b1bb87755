// Keyline iframe glue. Pages render completely without it; it only tells the
// host page (Jira or Confluence, through all.js) how tall the content is, and
// keeps doing so when sections expand.
(function () {
  "use strict";
  function resize() {
    if (window.AP && typeof window.AP.resize === "function") {
      var el = document.querySelector(".ac-content");
      var h = el ? Math.ceil(el.getBoundingClientRect().height) + 8 : document.body.scrollHeight;
      window.AP.resize("100%", h + "px");
    }
  }
  document.addEventListener("DOMContentLoaded", resize);
  window.addEventListener("load", resize);
  document.addEventListener("toggle", resize, true);
  if (window.ResizeObserver) {
    document.addEventListener("DOMContentLoaded", function () {
      var el = document.querySelector(".ac-content");
      if (el) { new ResizeObserver(resize).observe(el); }
    });
  }
})();
