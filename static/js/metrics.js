// Keyline's release metrics page: progressive enhancement only. The page is
// complete without this script; the filter is a plain GET form and the CSV
// downloads are plain links.
//
// Inside Jira (all.js loaded), the API only accepts a context token in a
// header, which a form submission or a link cannot send. So the script
// fetches the re-rendered metrics section with that token and swaps it in
// place, and fetches CSV files the same way. Without all.js it stays out of
// the way. Listeners sit on the document, so they keep working on the
// section that replaces the one they started with.
(function () {
  "use strict";

  var SECTION = '[data-testid="metrics"]';

  function ap() {
    var AP = window.AP;
    return AP && AP.context && typeof AP.context.getToken === "function" ? AP : null;
  }

  function get(AP, url, accept) {
    // Keyline.contextToken is keyline.js's, loaded on every page.
    return window.Keyline.contextToken(AP).then(function (t) {
      return fetch(url, {
        headers: { Authorization: "JWT " + t, Accept: accept },
        credentials: "same-origin"
      });
    }).then(function (res) {
      if (!res.ok) {
        throw new Error("Keyline could not load the metrics (HTTP " + res.status + "). Try again shortly.");
      }
      return res;
    });
  }

  // problem shows an error under the form; text only, never markup.
  function problem(form, err) {
    var p = form.parentNode.querySelector(".metrics-problem");
    if (!p) {
      p = document.createElement("p");
      p.className = "error metrics-problem";
      p.setAttribute("role", "alert");
      form.insertAdjacentElement("afterend", p);
    }
    p.textContent = err && err.message ? err.message : String(err);
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var AP = ap();
    if (!AP || !form.matches || !form.matches("form.metrics-filter[data-api]")) {
      return;
    }
    e.preventDefault();
    var section = form.closest(SECTION);
    var api = form.getAttribute("data-api");
    var query = new URLSearchParams(new FormData(form)).toString();
    var url = api + (api.indexOf("?") < 0 ? "?" : "&") + query;
    if (section) {
      section.setAttribute("aria-busy", "true");
    }
    get(AP, url, "text/html").then(function (res) {
      return res.text();
    }).then(function (html) {
      if (html.indexOf('data-testid="metrics"') < 0) {
        throw new Error("Keyline answered with something other than the metrics. Reload the page and try again.");
      }
      var current = form.closest(SECTION) || document.querySelector(SECTION);
      current.outerHTML = html;
      // Keep keyboard users where they were: on the filter's button.
      var button = document.querySelector(SECTION + " form.metrics-filter button[type=submit]");
      if (button) {
        button.focus();
      }
    }).catch(function (err) {
      if (section) {
        section.removeAttribute("aria-busy");
      }
      problem(form, err);
    });
  });

  document.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest('[data-testid="csv-links"] a[href^="/"]') : null;
    var AP = ap();
    if (!a || !AP || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) {
      return;
    }
    e.preventDefault();
    var href = a.getAttribute("href");
    get(AP, href, "text/csv").then(function (res) {
      return res.blob();
    }).then(function (blob) {
      var name = href.split("?")[0].split("/").pop() || "keyline.csv";
      if (!/\.csv$/.test(name)) {
        name += ".csv";
      }
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    }).catch(function (err) {
      var form = document.querySelector(SECTION + " form.metrics-filter");
      if (form) {
        problem(form, err);
      } else {
        a.title = err.message;
      }
    });
  });
})();
