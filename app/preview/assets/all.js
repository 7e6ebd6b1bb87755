/* Keyline preview: a stand-in for Atlassian's all.js
   (https://connect-cdn.atl-paas.net/all.js).

   It gives a framed Keyline page the parts of the AP object Keyline uses,
   and turns each call into a message to the host page, which plays Jira or
   Confluence: it resizes the iframe, signs context tokens, answers the
   context and records every call so a test can check it. The real all.js
   speaks Atlassian's own protocol; this one speaks only to the preview's host
   page (app/preview), so it is never served to a real product. */
(function () {
  "use strict";
  if (window.AP) {
    return;
  }
  var params = new URLSearchParams(window.location.search);
  // xdm_e is the product's origin: the only window the stub talks to.
  var host = params.get("xdm_e") || "";
  var channel = params.get("xdm_c") || "";
  var framed = window.parent !== window && host !== "";
  var calls = [];
  var waiting = {};
  var next = 0;
  var replyTimeout = 10000;

  function post(method, args, id) {
    calls.push({ method: method, args: args });
    if (!framed) {
      return false;
    }
    try {
      window.parent.postMessage({ type: "keyline-preview-ap", channel: channel, method: method, args: args, id: id }, host);
      return true;
    } catch (e) {
      // Arguments that cannot be cloned are a caller's mistake; all.js drops them too.
      return false;
    }
  }

  function ask(method, args) {
    return new Promise(function (resolve, reject) {
      var id = ++next;
      var timer = window.setTimeout(function () {
        delete waiting[id];
        reject(new Error("the host did not answer " + method));
      }, replyTimeout);
      waiting[id] = { resolve: resolve, reject: reject, timer: timer };
      if (!post(method, args, id)) {
        window.clearTimeout(timer);
        delete waiting[id];
        reject(new Error("not framed by the preview host"));
      }
    });
  }

  window.addEventListener("message", function (e) {
    if (!framed || e.source !== window.parent || e.origin !== host) {
      return;
    }
    var d = e.data;
    if (d && d.type === "keyline-preview-ap-theme") {
      applyTheme(d.value);
      return;
    }
    if (!d || d.type !== "keyline-preview-ap-reply" || !waiting[d.id]) {
      return;
    }
    var w = waiting[d.id];
    delete waiting[d.id];
    window.clearTimeout(w.timer);
    if (d.error) {
      w.reject(new Error(d.error));
    } else {
      w.resolve(d.value);
    }
  });

  // applyTheme marks <html> as all.js's theming does; the host sends the
  // mode again whenever its own changes.
  function applyTheme(mode) {
    if (mode === "light" || mode === "dark") {
      document.documentElement.setAttribute("data-color-mode", mode);
      document.documentElement.setAttribute("data-theme", "dark:dark light:light");
    }
  }

  // withCallback serves both styles all.js supports: a callback and a promise.
  function withCallback(p, cb) {
    if (typeof cb === "function") {
      p.then(cb, function () { cb(); });
    }
    return p;
  }

  function contentHeight() {
    var el = document.querySelector(".ac-content") || document.body;
    return Math.ceil(el ? el.getBoundingClientRect().height : document.documentElement.scrollHeight);
  }

  var listeners = {};
  function on(name, fn, once) {
    (listeners[name] = listeners[name] || []).push({ fn: fn, once: !!once });
    post("events.on", [String(name)]);
  }

  window.AP = {
    // _preview lets a test read the calls from inside the frame too.
    _preview: { calls: calls },
    resize: function (width, height) {
      var w = width == null || width === "" ? "100%" : String(width);
      var h = height == null || height === "" ? contentHeight() + "px" : String(height);
      post("resize", [w, h]);
    },
    sizeToParent: function () {
      post("sizeToParent", []);
    },
    context: {
      getToken: function (cb) { return withCallback(ask("context.getToken", []), cb); },
      getContext: function (cb) { return withCallback(ask("context.getContext", []), cb); }
    },
    events: {
      on: function (name, fn) { on(name, fn, false); },
      once: function (name, fn) { on(name, fn, true); },
      onPublic: function (name, fn) { on(name, fn, false); },
      off: function (name, fn) {
        listeners[name] = (listeners[name] || []).filter(function (l) { return l.fn !== fn; });
      },
      offAll: function (name) { delete listeners[name]; },
      emit: function (name) { post("events.emit", [String(name)]); },
      emitPublic: function (name) { post("events.emitPublic", [String(name)]); }
    },
    navigator: {
      go: function (target, context) {
        post("navigator.go", [String(target), JSON.parse(JSON.stringify(context || {}))]);
      },
      reload: function () { post("navigator.reload", []); },
      getLocation: function (cb) { return withCallback(ask("navigator.getLocation", []), cb); }
    },
    theming: {
      // The host answers its colour mode; all.js marks <html> the same way.
      initializeTheming: function () {
        ask("theming.initializeTheming", []).then(applyTheme, function () {});
      }
    }
  };
})();
