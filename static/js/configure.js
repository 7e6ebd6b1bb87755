// Keyline's Jira configure page: manages the site's webhook sources through
// the sources API (docs/ingest.md, "With the configure API"). The page lists
// the sources without this script; the script reveals the controls it
// rendered hidden and drives them: add a source and show its webhook URL and
// secret once, send it a signed test delivery and show the line it left,
// show the delivery log, edit the environment rules, set the signing secret
// a provider issued (PagerDuty), rotate the secret and delete the source.
//
// Every call carries a context token from all.js (AP.context.getToken), the
// only kind of token the API accepts. Text from the server is only ever set
// as textContent, never as markup.
(function () {
  "use strict";

  // Keyline's own test deliveries carry ids with this prefix
  // (ingest.TestDeliveryPrefix).
  var TEST_PREFIX = "keyline-test-";
  var RULE_TYPES = [
    ["development", "Development"],
    ["testing", "Testing"],
    ["staging", "Staging"],
    ["production", "Production"]
  ];
  var TONES = { accepted: "success", duplicate: "information", rejected: "danger" };

  var root, api, live, secretKinds, seq = 0;

  function one(sel, el) { return (el || document).querySelector(sel); }
  function all(sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text != null) { e.textContent = text; }
    return e;
  }

  // say announces a result to screen readers through the aria-live region;
  // clearing it first makes a repeated message be read again.
  function say(msg) {
    live.textContent = "";
    window.setTimeout(function () { live.textContent = msg; }, 50);
  }

  // ap waits for all.js, which loads asynchronously, for up to ten seconds.
  function ap() {
    return new Promise(function (resolve, reject) {
      var waited = 0;
      (function check() {
        var AP = window.AP;
        if (AP && AP.context && typeof AP.context.getToken === "function") {
          resolve(AP);
        } else if (waited >= 10000) {
          reject(new Error("Jira's all.js did not load, so Keyline cannot ask Jira who you are. " +
            "Open this page from Jira: Apps → Manage apps → Keyline → Configure."));
        } else {
          waited += 100;
          window.setTimeout(check, 100);
        }
      })();
    });
  }

  // token asks Jira for a context token (keyline.js, loaded on every page).
  function token() {
    return ap().then(function (AP) {
      return window.Keyline.contextToken(AP);
    });
  }

  // call sends one API request and resolves with its JSON (null for 204);
  // an error answer rejects with the API's reason.
  function call(method, path, body) {
    return token().then(function (tok) {
      var init = { method: method, cache: "no-store", credentials: "omit",
        headers: { Authorization: "JWT " + tok, Accept: "application/json" } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = typeof body === "string" ? body : JSON.stringify(body);
      }
      return fetch(api + path, init);
    }).then(function (res) {
      if (res.status === 204) {
        return null;
      }
      return res.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        if (!res.ok) {
          var err = new Error((data && data.error) || "Keyline answered " + res.status + ".");
          err.status = res.status;
          throw err;
        }
        return data;
      });
    });
  }

  function sourcePath(li, suffix) {
    return "/" + encodeURIComponent(li.getAttribute("data-source")) + (suffix || "");
  }

  // busy marks a button as working without disabling it, so focus stays on it.
  function busy(btn, on) {
    if (on) {
      btn.setAttribute("aria-disabled", "true");
      btn.setAttribute("data-busy", "");
    } else {
      btn.removeAttribute("aria-disabled");
      btn.removeAttribute("data-busy");
    }
  }

  function isBusy(btn) { return btn.hasAttribute("data-busy"); }

  function showError(box, msg) {
    box.textContent = msg || "";
    box.hidden = !msg;
  }

  function plural(n, one, many) { return n === 1 ? "1 " + one : n + " " + many; }

  // span words a rotation overlap: "24 hours", "7 days".
  function span(secs) {
    if (secs % 86400 === 0 && secs >= 2 * 86400) {
      return plural(secs / 86400, "day", "days");
    }
    if (secs % 3600 === 0) {
      return plural(secs / 3600, "hour", "hours");
    }
    return plural(Math.round(secs / 60), "minute", "minutes");
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // formatTime writes a time in UTC the way the server renders the page
  // ("25 Nov 2026, 10:00 UTC"), with seconds for the delivery log.
  function formatTime(iso, seconds) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) {
      return iso;
    }
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear() + ", " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + (seconds ? ":" + two(d.getUTCSeconds()) : "") + " UTC";
  }

  function timeEl(iso) {
    var t = el("time", null, formatTime(iso, true));
    t.setAttribute("datetime", iso);
    return t;
  }

  function kindLabel(kind) {
    var o = one('#source-kind option[value="' + kind + '"]', root);
    return o ? o.textContent : kind;
  }

  function hintFor(kind) {
    var tpl = all("template[data-hint]", root).filter(function (t) { return t.getAttribute("data-hint") === kind; })[0];
    return tpl ? document.importNode(tpl.content, true) : document.createDocumentFragment();
  }

  // --- copying -----------------------------------------------------------

  // copy writes a value to the clipboard; where the browser refuses (an
  // iframe without clipboard permission), it selects the text instead.
  function copy(btn, valueEl, what) {
    var text = valueEl.textContent;
    var p = navigator.clipboard && window.isSecureContext ?
      navigator.clipboard.writeText(text) : Promise.reject(new Error("no clipboard"));
    p.then(function () {
      flash(btn, "Copied");
      say(what + " copied to the clipboard.");
    }, function () {
      var sel = window.getSelection();
      sel.removeAllRanges();
      var range = document.createRange();
      range.selectNodeContents(valueEl);
      sel.addRange(range);
      say("The browser did not allow copying. The " + what.toLowerCase() + " is selected: press Ctrl+C, or ⌘C on a Mac.");
    });
  }

  function flash(btn, text) {
    var label = btn.firstChild;
    if (!label || label.nodeType !== 3) {
      return;
    }
    var was = label.nodeValue;
    label.nodeValue = text;
    window.setTimeout(function () { label.nodeValue = was; }, 2000);
  }

  // --- adding ------------------------------------------------------------

  function bindAdd() {
    var form = one("[data-add]", root);
    var err = one("[data-error]", form);
    var btn = one('button[type="submit"]', form);
    form.hidden = false;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (isBusy(btn)) {
        return;
      }
      busy(btn, true);
      showError(err, "");
      var kind = form.elements.kind.value;
      call("POST", "", { kind: kind, name: form.elements.name.value.trim() }).then(function (data) {
        addRow(data.source);
        showCreated(data);
        form.elements.name.value = "";
        say("Source " + data.source.name + " added. Its webhook URL and secret follow; they are shown only once.");
      }, function (e2) {
        showError(err, "The source was not added: " + e2.message);
        say("The source was not added: " + e2.message);
      }).then(function () { busy(btn, false); });
    });

    var created = one("[data-created]", root);
    all("[data-copy]", created).forEach(function (b) {
      var target = document.getElementById(b.getAttribute("data-copy"));
      var what = b.getAttribute("data-copy") === "created-url" ? "Webhook URL" : "Secret";
      b.addEventListener("click", function () { copy(b, target, what); });
    });
    one("[data-dismiss]", created).addEventListener("click", function () {
      var id = created.getAttribute("data-for");
      // The values go with the panel: nothing should linger in the page.
      all("[data-value]", created).forEach(function (v) { v.textContent = ""; });
      one("[data-hint-slot]", created).textContent = "";
      created.hidden = true;
      var row = id && all("[data-source]", root).filter(function (r) { return r.getAttribute("data-source") === id; })[0];
      var focus = row ? one("[data-field=name]", row) : one("#sources-heading", root);
      focus.focus();
    });
  }

  function showCreated(data) {
    var created = one("[data-created]", root);
    created.setAttribute("data-for", data.source.id);
    one("[data-created-heading]", created).textContent = "“" + data.source.name + "” added";
    one("#created-url", created).textContent = data.webhook_url;
    one("#created-secret", created).textContent = data.secret;
    var slot = one("[data-hint-slot]", created);
    slot.textContent = "";
    slot.appendChild(el("h4", null, "Connect " + kindLabel(data.source.kind)));
    slot.appendChild(hintFor(data.source.kind));
    created.hidden = false;
    created.focus();
  }

  function updateCount() {
    var n = all("[data-list] > [data-source]", root).length;
    one("[data-count]", root).textContent = String(n);
    one("[data-empty]", root).hidden = n > 0;
  }

  // addRow lists a source the API just created, from the row template.
  function addRow(src) {
    var tpl = one("template[data-row-template]", root);
    var li = document.importNode(tpl.content, true).querySelector("[data-source]");
    li.setAttribute("data-source", src.id);
    li.setAttribute("data-kind", src.kind);
    one("[data-field=name]", li).textContent = src.name;
    one("[data-field=confirm-name]", li).textContent = src.name;
    one("[data-field=kind]", li).textContent = kindLabel(src.kind);
    one("[data-field=id]", li).textContent = src.id;
    var created = one("[data-field=created]", li);
    created.setAttribute("datetime", src.created_at);
    created.textContent = formatTime(src.created_at);
    one("[data-field=hint]", li).appendChild(hintFor(src.kind));
    if (secretKinds.indexOf(src.kind) >= 0) {
      toggle(li, "secret").hidden = false;
      one("[data-field=secret-state]", li).hidden = false;
      showSecretState(li, !!src.secret_provided);
    }
    one("[data-actions]", li).setAttribute("aria-label", "Manage " + src.name);
    one("caption", li).textContent = "Deliveries to " + src.name;
    showRules(li, src.environment_rules || {});
    one("[data-list]", root).appendChild(li);
    bindRow(li);
    updateCount();
    return li;
  }

  // --- one source ----------------------------------------------------------

  function panel(li, name) { return one('[data-panel="' + name + '"]', li); }
  function toggle(li, name) { return one('[data-action="' + name + '"]', li); }

  function open(li, name, focus) {
    var p = panel(li, name);
    p.hidden = false;
    toggle(li, name).setAttribute("aria-expanded", "true");
    if (focus) {
      p.focus();
    }
  }

  function close(li, name) {
    panel(li, name).hidden = true;
    toggle(li, name).setAttribute("aria-expanded", "false");
  }

  function rowError(li, msg) {
    showError(one("[data-row-error]", li), msg);
    if (msg) {
      say(msg);
    }
  }

  function bindRow(li) {
    var n = ++seq;
    one("[data-actions]", li).hidden = false;
    all("[data-panel]", li).forEach(function (p) {
      var name = p.getAttribute("data-panel");
      p.id = "source-" + n + "-" + name;
      p.tabIndex = -1;
      var b = toggle(li, name);
      if (b) {
        b.setAttribute("aria-controls", p.id);
      }
      // Escape closes a panel and returns to its button.
      p.addEventListener("keydown", function (e) {
        if (e.key === "Escape" && b) {
          close(li, name);
          b.focus();
        }
      });
    });
    one("[data-field=name]", li).tabIndex = -1;

    toggle(li, "log").addEventListener("click", function () {
      if (panel(li, "log").hidden) {
        open(li, "log", true);
        loadLog(li);
      } else {
        close(li, "log");
      }
    });
    one("[data-refresh]", li).addEventListener("click", function () { loadLog(li); });
    toggle(li, "rules").addEventListener("click", function () {
      if (panel(li, "rules").hidden) {
        open(li, "rules", false);
        one("textarea", li).focus();
      } else {
        close(li, "rules");
      }
    });
    toggle(li, "rotate").addEventListener("click", function () {
      if (panel(li, "rotate").hidden) {
        open(li, "rotate", true);
      } else {
        close(li, "rotate");
      }
    });
    toggle(li, "delete").addEventListener("click", function () {
      if (panel(li, "delete").hidden) {
        open(li, "delete", true);
      } else {
        close(li, "delete");
      }
    });
    one("[data-cancel]", li).addEventListener("click", function () {
      close(li, "delete");
      toggle(li, "delete").focus();
    });
    one('[data-action="test"]', li).addEventListener("click", function (e) { sendTest(li, e.currentTarget); });
    toggle(li, "secret").addEventListener("click", function () {
      if (panel(li, "secret").hidden) {
        open(li, "secret", false);
        one('input[name="secret"]', li).focus();
      } else {
        close(li, "secret");
      }
    });
    panel(li, "secret").addEventListener("submit", function (e) {
      e.preventDefault();
      setSecret(li, one('button[type="submit"]', e.currentTarget));
    });
    var secretErr = one("[data-error]", panel(li, "secret"));
    secretErr.id = "source-" + n + "-secret-error";
    one("[data-confirm-delete]", li).addEventListener("click", function (e) { remove(li, e.currentTarget); });
    panel(li, "rules").addEventListener("submit", function (e) {
      e.preventDefault();
      saveRules(li, one('button[type="submit"]', e.currentTarget));
    });
    var errs = one("[data-error]", panel(li, "rules"));
    errs.id = "source-" + n + "-rules-errors";
    panel(li, "rotate").addEventListener("submit", function (e) {
      e.preventDefault();
      rotate(li, one('button[type="submit"]', e.currentTarget));
    });
    var copyNew = one("[data-copy-here]", li);
    copyNew.addEventListener("click", function () {
      copy(copyNew, one("[data-rotated] [data-value]", li), "New secret");
    });
  }

  // loadLog shows the source's delivery log, newest first.
  function loadLog(li) {
    var p = panel(li, "log");
    var status = one("[data-log-status]", p);
    var table = one("[data-log]", p);
    var tbody = one("tbody", table);
    status.textContent = "Loading the delivery log…";
    return call("GET", sourcePath(li, "/deliveries")).then(function (data) {
      var ds = (data && data.deliveries) || [];
      tbody.textContent = "";
      ds.forEach(function (d) { tbody.appendChild(logRow(d)); });
      table.hidden = ds.length === 0;
      status.textContent = ds.length === 0 ? "No deliveries yet." :
        plural(ds.length, "delivery", "deliveries") + ", newest first.";
      return ds;
    }, function (e) {
      status.textContent = "The delivery log could not be loaded: " + e.message;
      return [];
    });
  }

  function logRow(d) {
    var tr = el("tr");
    tr.setAttribute("data-delivery", d.delivery_id || "");
    var time = el("td");
    time.appendChild(timeEl(d.received_at));
    tr.appendChild(time);
    var ev = el("td");
    ev.appendChild(el("code", null, d.event || "—"));
    if ((d.delivery_id || "").indexOf(TEST_PREFIX) === 0) {
      tr.className = "cfg-test-line";
      ev.appendChild(el("span", "lozenge", "test"));
    }
    tr.appendChild(ev);
    var outcome = el("td");
    var loz = el("span", "lozenge", d.outcome);
    if (TONES[d.outcome]) {
      loz.setAttribute("data-tone", TONES[d.outcome]);
    }
    outcome.appendChild(loz);
    tr.appendChild(outcome);
    tr.appendChild(el("td", "cfg-status", String(d.status)));
    tr.appendChild(el("td", "cfg-reason", d.reason || ""));
    return tr;
  }

  // sendTest sends the source a signed test delivery, says what came of it
  // and shows its line in the opened log.
  function sendTest(li, btn) {
    if (isBusy(btn)) {
      return;
    }
    var result = one("[data-test-result]", li);
    busy(btn, true);
    rowError(li, "");
    result.hidden = true;
    call("POST", sourcePath(li, "/test")).then(function (data) {
      var d = data.delivery;
      var summary = "Test delivery: " + d.outcome + ", status " + d.status + (d.reason ? " — " + d.reason : "") + ".";
      result.textContent = "Sent " + data.sent + ". " + summary;
      result.hidden = false;
      open(li, "log", false);
      return loadLog(li).then(function () {
        all("tbody tr", panel(li, "log")).forEach(function (tr) {
          if (tr.getAttribute("data-delivery") === d.delivery_id) {
            tr.classList.add("cfg-new");
          }
        });
        say(summary + " It is the newest line of the delivery log.");
      });
    }, function (e) {
      rowError(li, "No test delivery was sent: " + e.message);
    }).then(function () { busy(btn, false); });
  }

  // showSecretState says whether the provider's signing secret is set, as
  // the server renders it.
  function showSecretState(li, provided) {
    var dd = one("[data-field=secret-state-text]", li);
    dd.textContent = "";
    if (provided) {
      dd.appendChild(el("span", null, "Set"));
      return;
    }
    dd.appendChild(el("span", "lozenge lozenge-danger", "Not set"));
    dd.appendChild(el("span", "subtle", " deliveries are refused until the secret " +
      kindLabel(li.getAttribute("data-kind")) + " issued is set"));
  }

  // setSecret gives Keyline the signing secret the provider issued. The
  // field is emptied once it is saved: the page keeps no secret.
  function setSecret(li, btn) {
    if (isBusy(btn)) {
      return;
    }
    var form = panel(li, "secret");
    var input = one('input[name="secret"]', form);
    var err = one("[data-error]", form);
    var saved = one("[data-saved]", form);
    busy(btn, true);
    saved.hidden = true;
    call("PUT", sourcePath(li, "/secret"), { secret: input.value }).then(function () {
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      showError(err, "");
      showSecretState(li, true);
      saved.textContent = "Secret saved. Deliveries signed with it are accepted from now on; the previous secret no longer verifies.";
      saved.hidden = false;
      say("The signing secret was saved. Deliveries signed with it are accepted from now on.");
    }, function (e) {
      showError(err, "The secret was not saved: " + e.message);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", err.id);
      input.focus();
      say("The secret was not saved: " + e.message);
    }).then(function () { busy(btn, false); });
  }

  // showRules writes a source's rules in words, as the server renders them.
  function showRules(li, rules) {
    var dd = one("[data-field=rules]", li);
    dd.textContent = "";
    var shown = 0;
    RULE_TYPES.forEach(function (t) {
      var globs = rules[t[0]];
      if (!globs || !globs.length) {
        return;
      }
      if (shown++ > 0) {
        dd.appendChild(document.createTextNode(" · "));
      }
      var span = el("span", null, t[1] + ": ");
      span.appendChild(el("code", null, globs.join(", ")));
      dd.appendChild(span);
    });
    if (!shown) {
      dd.appendChild(el("span", "subtle", "None: the provider's type and the name heuristic decide"));
    }
  }

  function saveRules(li, btn) {
    if (isBusy(btn)) {
      return;
    }
    var form = panel(li, "rules");
    var area = one("textarea", form);
    var errs = one("[data-error]", form);
    busy(btn, true);
    call("PUT", sourcePath(li, "/environment-rules"), area.value).then(function (data) {
      var rules = (data && data.source && data.source.environment_rules) || {};
      area.value = JSON.stringify(rules, null, 2);
      area.removeAttribute("aria-invalid");
      area.removeAttribute("aria-describedby");
      errs.textContent = "";
      errs.hidden = true;
      showRules(li, rules);
      say("Environment rules saved. Deliveries from now on are typed by them.");
    }, function (e) {
      // The API names every problem on one line; each gets its own item.
      var problems = e.status === 400 ?
        e.message.split(/;\s*(?=invalid environment rules)/) : [e.message];
      errs.textContent = "";
      problems.forEach(function (m) { errs.appendChild(el("li", null, m)); });
      errs.hidden = false;
      area.setAttribute("aria-invalid", "true");
      area.setAttribute("aria-describedby", errs.id);
      area.focus();
      say("The rules were not saved: " + plural(problems.length, "problem", "problems") + ". " + problems.join(" "));
    }).then(function () { busy(btn, false); });
  }

  function rotate(li, btn) {
    if (isBusy(btn)) {
      return;
    }
    var form = panel(li, "rotate");
    var checked = one('input[name="overlap"]:checked', form);
    var overlap = parseInt(checked ? checked.value : "86400", 10);
    busy(btn, true);
    rowError(li, "");
    call("POST", sourcePath(li, "/rotate"), { overlap_seconds: overlap }).then(function (data) {
      var box = one("[data-rotated]", form);
      one("[data-value]", box).textContent = data.secret;
      box.hidden = false;
      var prev = one("[data-field=previous]", li);
      var secs = data.previous_secret_valid_for_seconds || 0;
      if (secs > 0) {
        var until = new Date(Date.now() + secs * 1000).toISOString();
        var t = one("[data-field=previous-until]", li);
        t.setAttribute("datetime", until);
        t.textContent = formatTime(until);
      }
      prev.hidden = secs <= 0;
      if (secretKinds.indexOf(li.getAttribute("data-kind")) >= 0) {
        // Keyline's new secret replaced the one the provider issued.
        showSecretState(li, false);
      }
      say("A new secret was issued and is shown once, below. " + (secs > 0 ?
        "The previous one keeps verifying for " + span(secs) + "." :
        "The previous one stopped verifying."));
    }, function (e) {
      rowError(li, "The secret was not rotated: " + e.message);
    }).then(function () { busy(btn, false); });
  }

  function remove(li, btn) {
    if (isBusy(btn)) {
      return;
    }
    busy(btn, true);
    var name = one("[data-field=name]", li).textContent;
    call("DELETE", sourcePath(li)).then(function () {
      li.parentNode.removeChild(li);
      var created = one("[data-created]", root);
      if (created.getAttribute("data-for") === li.getAttribute("data-source")) {
        one("[data-dismiss]", created).click();
      }
      updateCount();
      one("#sources-heading", root).focus();
      say("Source " + name + " deleted. Its webhook URL no longer answers.");
    }, function (e) {
      busy(btn, false);
      rowError(li, "The source was not deleted: " + e.message);
    });
  }

  function start() {
    root = one("[data-testid=sources][data-api]");
    if (!root) {
      return;
    }
    api = root.getAttribute("data-api");
    live = one("[data-live]", root);
    secretKinds = (root.getAttribute("data-secret-kinds") || "").split(" ").filter(Boolean);
    bindAdd();
    all("[data-list] > [data-source]", root).forEach(bindRow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
