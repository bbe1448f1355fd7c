// ccci's run page: live lines over SSE (/runs/<id>/events), the follow
// toggle, "more lines" in place, and #s<k>-L<n> anchors past the first page.
// The server renders and escapes every line; this only moves its HTML.
"use strict";
(function () {
  var live = document.getElementById("live");
  var follow = document.getElementById("follow");
  var end = document.getElementById("steps-end");
  var run = live ? live.getAttribute("data-run") : null;
  var scrolling = false;

  function section(n, name) {
    var s = document.getElementById("s" + n);
    if (s) return s;
    s = document.createElement("section");
    s.id = "s" + n;
    var h = document.createElement("h2");
    var a = document.createElement("a");
    a.href = "#s" + n;
    a.textContent = name || "step " + n;
    h.appendChild(a);
    var pre = document.createElement("pre");
    pre.className = "log";
    s.appendChild(h);
    s.appendChild(pre);
    end.parentNode.insertBefore(s, end);
    return s;
  }

  function keepFollowing() {
    if (!follow || !follow.checked || scrolling) return;
    scrolling = true;
    window.requestAnimationFrame(function () {
      scrolling = false;
      window.scrollTo(0, document.body.scrollHeight);
    });
  }

  function addLine(ev) {
    var d = JSON.parse(ev.data);
    var id = "s" + d.step + "-L" + (d.pos + 1);
    if (document.getElementById(id)) return;
    var pre = section(d.step).querySelector("pre.log");
    var div = document.createElement("div");
    div.className = "l";
    div.id = id;
    var a = document.createElement("a");
    a.href = "#" + id;
    a.textContent = String(d.pos + 1);
    var t = document.createElement("span");
    t.className = "t";
    t.innerHTML = d.html;
    div.appendChild(a);
    div.appendChild(t);
    pre.appendChild(div);
    keepFollowing();
  }

  function say(text) {
    var s = document.getElementById("live-state");
    if (s) s.textContent = text;
  }

  if (run) {
    var after = live.getAttribute("data-after");
    var url = "/runs/" + encodeURIComponent(run) + "/events" +
      (after ? "?after=" + encodeURIComponent(after) : "");
    var es = new EventSource(url);
    es.addEventListener("step", function (ev) {
      var d = JSON.parse(ev.data);
      section(d.n, d.name);
    });
    es.onmessage = addLine;
    es.addEventListener("end", function (ev) {
      var d = JSON.parse(ev.data);
      es.close();
      var st = document.getElementById("state");
      var re = document.getElementById("result");
      if (st) st.textContent = d.state;
      if (re) re.textContent = d.reason || "";
      say("finished: " + (d.reason || d.state) + (d.level ? ", level " + d.level : "") +
        " (reload for the tier table)");
      document.body.classList.add("ended");
    });
    es.addEventListener("error", function (ev) {
      // The server's error event carries a message; the browser's own (a
      // dropped connection) has none and reconnects with Last-Event-ID.
      if (ev.data) say(JSON.parse(ev.data).message + "; resuming");
      else say("reconnecting");
    });
    es.onopen = function () { say("live"); };
  }

  // "N more lines": the next page of the step, in place.
  function more(p) {
    var a = p.querySelector("a");
    return fetch(a.href, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (html) {
      var tpl = document.createElement("template");
      tpl.innerHTML = html;
      var pre = p.parentNode.querySelector("pre.log");
      var next = tpl.content.querySelector("p.more");
      tpl.content.querySelectorAll("div.l").forEach(function (l) {
        if (!document.getElementById(l.id)) pre.appendChild(l);
      });
      if (next) p.parentNode.replaceChild(next, p);
      else p.parentNode.removeChild(p);
      return next;
    });
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("p.more a") : null;
    if (!a) return;
    ev.preventDefault();
    more(a.parentNode);
  });

  // An anchor past the lines shown: load pages of its step until it exists.
  function seek() {
    var m = /^#s(\d+)-L(\d+)$/.exec(window.location.hash);
    if (!m || document.getElementById(window.location.hash.slice(1))) return;
    var s = document.getElementById("s" + m[1]);
    var p = s ? s.querySelector("p.more") : null;
    var tries = 0;
    function step(p) {
      var el = document.getElementById(window.location.hash.slice(1));
      if (el) { el.scrollIntoView(); return; }
      if (!p || ++tries > 400) return;
      more(p).then(step);
    }
    step(p);
  }
  window.addEventListener("hashchange", seek);
  seek();
})();
