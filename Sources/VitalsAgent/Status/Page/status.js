"use strict";
(function () {
  var REFRESH_MS = 2000, SPARK_WINDOW_MS = 10 * 60 * 1000, SPARK_POINTS = 60, EXPLAIN_TTL_MS = 30000;
  var MAX_EVENTS = 200, SHOWN_EVENTS = 100;
  var STATES = ["down", "flapping", "degraded", "unknown", "maintenance", "up"];
  var $ = function (id) { return document.getElementById(id); };

  var status = null;          // the last /v1/status document
  var services = {};          // name -> service
  var startedAt = null;       // agent.started_at: a change means the agent restarted
  var hist = {};              // name -> [{t, v, f}] latency points, oldest first
  var events = [];            // oldest first
  var lastId = 0;
  var openState = {};         // details key -> bool, set by the operator
  var filterText = "";
  var lastOk = 0;

  // ---------- helpers ----------
  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function stateClass(s) { return STATES.indexOf(s) >= 0 ? "st-" + s : "st-unknown"; }
  function pill(s) { return '<span class="st ' + stateClass(s) + '">' + esc(s || "unknown") + "</span>"; }
  function severity(s) { var i = STATES.indexOf(s); return i < 0 ? 3 : i; }
  function ago(iso) {
    var t = Date.parse(iso);
    if (!iso || isNaN(t)) return "";
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor(s % 3600 / 60) + "m ago";
    return Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h ago";
  }
  function when(iso) { return iso ? '<span title="' + esc(iso) + '">' + esc(ago(iso)) + "</span>" : ""; }
  function ms(v) {
    if (typeof v !== "number" || !isFinite(v)) return "—";
    return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : String(Math.round(v))) + " ms";
  }
  function store(key, value) {
    try { if (value == null) sessionStorage.removeItem(key); else sessionStorage.setItem(key, value); } catch (e) { /* storage unavailable */ }
  }
  function load(key) { try { return sessionStorage.getItem(key); } catch (e) { return null; } }
  function getJSON(url) {
    return fetch(url, { cache: "no-store", headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
        return body;
      });
    });
  }
  function banner(text, kind) {
    var b = $("banner");
    if (!text) { b.className = "hidden"; b.textContent = ""; return; }
    b.className = kind || "";
    b.textContent = text;
  }

  // ---------- filter ----------
  function terms() {
    return filterText.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
  }
  function matches(ts, fields, state) {
    if (!ts.length) return true;
    var hay = fields.join("\n").toLowerCase();
    for (var i = 0; i < ts.length; i++) {
      var t = ts[i];
      if (t.indexOf("state:") === 0) { if ((state || "") !== t.slice(6)) return false; }
      else if (hay.indexOf(t) < 0) return false;
    }
    return true;
  }
  function serviceMatches(ts, s) {
    return matches(ts, [s.name, s.state, s.reason, s.kind, s.target, s.blocked_by || ""], s.state);
  }

  // ---------- sparklines ----------
  function addPoint(name, t, v, failed) {
    if (isNaN(t)) return false;
    var h = hist[name] || (hist[name] = []);
    for (var i = h.length - 1; i >= 0 && h[i].t >= t; i--) if (h[i].t === t) return false;
    h.push({ t: t, v: typeof v === "number" && isFinite(v) ? v : null, f: !!failed });
    h.sort(function (a, b) { return a.t - b.t; });
    var newest = h[h.length - 1].t;
    while (h.length > SPARK_POINTS || (h.length && h[0].t < newest - SPARK_WINDOW_MS)) h.shift();
    return true;
  }
  function spark(name) {
    var h = hist[name];
    if (!h || !h.length) return '<span class="none">…</span>';
    var vals = h.filter(function (p) { return p.v != null; }).map(function (p) { return p.v; });
    var W = 84, H = 20, n = h.length;
    var lo = vals.length ? Math.min.apply(null, vals) : 0, hi = vals.length ? Math.max.apply(null, vals) : 0;
    var span = hi - lo || 1;
    var pts = [], marks = "";
    for (var i = 0; i < n; i++) {
      var x = n === 1 ? W / 2 : 1 + i * (W - 2) / (n - 1);
      if (h[i].v != null) {
        var y = hi === lo ? H / 2 : H - 2 - (h[i].v - lo) / span * (H - 4);
        pts.push(x.toFixed(1) + "," + y.toFixed(1));
      }
      if (h[i].f) marks += '<circle cx="' + x.toFixed(1) + '" cy="' + (H - 2) + '" r="1.8"></circle>';
    }
    var title = vals.length ? ms(lo) + " – " + ms(hi) + " over " + n + " probes" : n + " probes, no latency";
    if (pts.length === 1) marks += '<circle cx="' + pts[0].split(",")[0] + '" cy="' + pts[0].split(",")[1] + '" r="1.5" style="fill:currentColor"></circle>';
    return '<svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + esc(title) +
      '"><title>' + esc(title) + "</title>" + (pts.length > 1 ? '<polyline points="' + pts.join(" ") + '"></polyline>' : "") + marks + "</svg>";
  }
  function redrawSpark(name) {
    var nodes = document.querySelectorAll(".spark");
    for (var i = 0; i < nodes.length; i++) if (nodes[i].getAttribute("data-n") === name) nodes[i].innerHTML = spark(name);
  }

  var explainAt = {}, queue = [], inflight = 0;
  function want(name) {
    if (!name || !services[name] || document.hidden) return;
    var t = explainAt[name];
    if (t && Date.now() - t < EXPLAIN_TTL_MS) return;
    explainAt[name] = Date.now();
    queue.push(name);
    pump();
  }
  function pump() {
    while (inflight < 4 && queue.length) {
      (function (name) {
        inflight++;
        getJSON("v1/services/" + encodeURIComponent(name) + "/explain").then(function (d) {
          var recent = (d && d.recent) || [], changed = false;
          for (var i = 0; i < recent.length; i++) {
            var r = recent[i];
            if (addPoint(name, Date.parse(r.time), r.latency_ms, r.outcome === "failed")) changed = true;
          }
          if (changed) redrawSpark(name);
        }).catch(function () { /* the next refresh tries again */ }).then(function () { inflight--; pump(); });
      })(queue.shift());
    }
  }
  var observer = typeof IntersectionObserver === "function" ? new IntersectionObserver(function (entries) {
    for (var i = 0; i < entries.length; i++) if (entries[i].isIntersecting) want(entries[i].target.getAttribute("data-n"));
  }, { rootMargin: "200px" }) : null;
  function observeSparks() {
    var nodes = document.querySelectorAll(".spark");
    if (observer) {
      observer.disconnect();
      for (var i = 0; i < nodes.length; i++) observer.observe(nodes[i]);
    } else {
      for (var j = 0; j < nodes.length && j < 40; j++) want(nodes[j].getAttribute("data-n"));
    }
  }

  // ---------- rendering ----------
  function row(s, extra) {
    var why = "";
    if (s.state !== "up") {
      why = "<b>" + esc(s.reason) + "</b>";
      if (s.rule) why += " · " + esc(s.rule);
      if (s.blocked_by) why += " · blocked by " + esc(s.blocked_by);
      if (s.maintenance_until) why += " · until " + when(s.maintenance_until);
    }
    if (s.heartbeat && s.heartbeat.deadline) why += (why ? "<br>" : "") + "next beat due " + esc(s.heartbeat.deadline);
    if (s.heartbeat && s.heartbeat.running_since) why += "<br>running since " + esc(s.heartbeat.running_since);
    var ctl = s.state === "maintenance"
      ? '<button type="button" data-act="ready" data-s="' + esc(s.name) + '">Ready</button>'
      : '<button type="button" data-act="maintenance" data-s="' + esc(s.name) + '">Maintenance…</button>';
    return '<tr><td class="n">' + esc(s.name) + '<button type="button" class="hl" data-hist="' + esc(s.name) + '" aria-label="History of ' + esc(s.name) + '">history</button>' + (extra || "") + "<small>" + esc(s.kind) + " " + esc(s.target) + "</small></td>" +
      '<td class="s">' + pill(s.state) + "</td>" +
      '<td class="num" data-l="since">' + when(s.since) + "</td>" +
      '<td class="num" data-l="latency">' + ms(s.latency_ms) + "</td>" +
      '<td><span class="spark" data-n="' + esc(s.name) + '">' + spark(s.name) + "</span></td>" +
      '<td class="why">' + why + "</td>" +
      '<td class="ctl">' + ctl + "</td></tr>";
  }
  var HEAD = '<table class="svc"><thead><tr><th>Service</th><th>State</th><th>Since</th><th>Latency</th><th>Trend</th><th>Reason</th><th></th></tr></thead><tbody>';
  function isOpen(key, dflt, forced) {
    if (forced) return true;
    return Object.prototype.hasOwnProperty.call(openState, key) ? openState[key] : dflt;
  }
  function renderGroups(ts) {
    var groups = (status && status.groups) || [], html = "", shown = 0;
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i], members = g.members || [];
      var gMatch = matches(ts, [g.name, g.state, g.mode, g.condition, g.isolation_reason || "", g.hold ? g.hold.reason : ""], g.state);
      var rows = "", hits = 0;
      for (var j = 0; j < members.length; j++) {
        var m = members[j], s = services[m.name] || { name: m.name, state: m.state, reason: m.reason, kind: "", target: "", blocked_by: m.blocked_by };
        if (!gMatch && !serviceMatches(ts, s)) continue;
        hits++;
        rows += row(s, m.active ? ' <span class="tag act">active</span>' : "");
      }
      if (!gMatch && !hits) continue;
      shown++;
      var key = "g:" + g.name;
      // A group whose condition is down is an emergency even while some member
      // serves (held on a dead active member): red, and open.
      var shownState = g.condition === "down" ? "down" : g.state;
      var open = isOpen(key, shownState !== "up" || groups.length <= 8, ts.length > 0);
      var meta = esc(g.mode) + " · " + esc(g.condition) + " · active: " + (g.active && g.active.length ? esc(g.active.join(", ")) : "none") +
        " · " + members.length + " member" + (members.length === 1 ? "" : "s") + groupUptimeText(g.name);
      var tags = (g.held ? ' <span class="tag hold">held</span>' : "") + (g.isolated ? ' <span class="tag hold">isolated</span>' : "") +
        (g.pending ? ' <span class="tag">pending ' + esc(g.pending.kind) + "</span>" : "");
      var notes = "";
      if (g.hold) notes += '<p class="note warn">Held (' + esc(g.hold.cause) + ") " + when(g.hold.since) + ": " + esc(g.hold.reason) + "</p>";
      if (g.held && g.condition === "down") notes += '<p class="note warn">The active member does not serve and the group is held: release it or switch over.</p>';
      if (g.isolated) notes += '<p class="note warn">Isolated: ' + esc(g.isolation_reason) + "</p>";
      if (g.pending) notes += '<p class="note">Pending ' + esc(g.pending.kind) + " " + esc(g.pending.from) + " → " + esc(g.pending.to) +
        " not before " + esc(g.pending.not_before) + ": " + esc(g.pending.reason) + "</p>";
      if (g.last_move_at) notes += '<p class="note">Last move ' + when(g.last_move_at) + "; failovers in window: " + esc(g.recent_failovers) + "</p>";
      html += '<details data-k="' + esc(key) + '"' + (open ? " open" : "") + "><summary><b>" + esc(g.name) + "</b>" + pill(shownState) +
        '<span class="meta">' + meta + "</span>" + tags + "</summary>" +
        (open ? '<div class="gbody"><div class="gctl">' +
          (g.held ? '<button type="button" data-act="release" data-g="' + esc(g.name) + '">Release</button>'
                  : '<button type="button" data-act="hold" data-g="' + esc(g.name) + '">Hold…</button>') +
          (g.mode === "active-passive" ? '<button type="button" data-act="switchover" data-g="' + esc(g.name) + '">Switchover…</button>' : "") +
          "</div>" + notes +
          (rows ? HEAD + rows + "</tbody></table>" : '<p class="note">No members.</p>') + "</div>" : "") +
        "</details>";
    }
    $("groups-h").textContent = "Groups (" + (ts.length ? shown + " of " : "") + groups.length + ")";
    $("groups").innerHTML = html || '<p class="note">' + (groups.length ? "No group matches the filter." : "No groups configured.") + "</p>";
  }
  function renderServices(ts) {
    var list = (status && status.services) || [];
    var sorted = list.filter(function (s) { return serviceMatches(ts, s); }).sort(function (a, b) {
      return severity(a.state) - severity(b.state) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
    var key = "all", open = isOpen(key, true, ts.length > 0), rows = "";
    if (open) for (var i = 0; i < sorted.length; i++) rows += row(sorted[i]);
    $("services").innerHTML = '<details data-k="all"' + (open ? " open" : "") + "><summary><b>All services</b>" +
      '<span class="meta">' + (ts.length ? sorted.length + " of " : "") + list.length + ", worst first</span></summary>" +
      (open ? '<div class="gbody">' + (rows ? HEAD + rows + "</tbody></table>" : '<p class="note">No service matches the filter.</p>') + "</div>" : "") +
      "</details>";
  }
  function renderHeader() {
    var a = status.agent || {}, c = a.counts || {};
    $("agent").textContent = "v" + (a.version || "?") + " · up " + ago(a.started_at).replace(" ago", "") + (a.ready ? "" : " · starting");
    var chips = "";
    for (var i = 0; i < STATES.length; i++) {
      var s = STATES[i];
      if (c[s]) chips += '<button type="button" class="chip" data-state="' + s + '" title="Show only ' + s + '">' + pill(s) + " " + esc(c[s]) + "</button>";
    }
    if (a.store && a.store.degraded) chips += '<span class="chip res-bad" title="' + esc(a.store.last_error) + '">state directory failing</span>';
    if (a.cluster) {
      var cl = a.cluster, lead = cl.role === "leader" ? "leader" : cl.role === "follower" ? "follower of " + cl.leader : "no leader";
      chips += '<span class="chip ' + (cl.role === "none" ? "res-bad" : "") + '" id="cluster-role" title="' + esc(cl.status) + '">' + esc(cl.name) + ": " + esc(lead) + "</span>";
    }
    $("counts").innerHTML = chips;
    var bad = (c.down || 0) + (c.flapping || 0);
    document.title = (bad ? "(" + bad + " down) " : "") + "Vitals";
  }
  function renderEvents() {
    var ts = terms(), html = "", n = 0;
    for (var i = events.length - 1; i >= 0 && n < SHOWN_EVENTS; i--) {
      var e = events[i];
      if (!matches(ts, [e.kind, e.group || "", e.service || "", e.reason || "", e.from || "", e.to || "", e.root_cause || ""], e.to)) continue;
      n++;
      var subject = [e.group, e.service].filter(function (x) { return x; }).map(esc).join(" / ");
      var move = e.from || e.to ? " " + (e.from ? esc(e.from) : "∅") + " → " + (e.to ? esc(e.to) : "∅") : "";
      var acts = "";
      var list = e.actions || [];
      for (var j = 0; j < list.length; j++) {
        var x = list[j], r = x.result || {}, st = r.status || "?";
        var cls = st === "ok" ? "res-ok" : st === "skipped" ? "res-skip" : "res-bad";
        acts += "<li>" + esc(x.action) + " (" + esc(x.kind) + "): <span class=\"" + cls + "\">" + esc(st) + "</span>" +
          (r.message ? " — " + esc(r.message) : "") + (x.attempts > 1 ? " · " + esc(x.attempts) + " attempts" : "") +
          (typeof x.duration_ms === "number" ? " · " + ms(x.duration_ms) : "") + "</li>";
      }
      html += '<li><time title="' + esc(e.time) + '">' + esc(String(e.time || "").replace("T", " ").replace(/\.\d+Z$/, "Z")) + "</time>" +
        '<span class="tag">' + esc(e.kind) + "</span> <b>" + subject + "</b>" + move +
        (e.reason ? ": " + esc(e.reason) : "") + (e.rule ? ' <span class="note">(' + esc(e.rule) + ")</span>" : "") +
        (e.root_cause ? ' <span class="note">root cause: ' + esc(e.root_cause) + "</span>" : "") +
        (acts ? "<ul>" + acts + "</ul>" : "") + "</li>";
    }
    $("events").innerHTML = html ? "<ol>" + html + "</ol>" : '<p class="note">' + (events.length ? "No event matches the filter." : "No events yet.") + "</p>";
  }
  // ---------- history ----------
  var groupUptime = {}, groupUptimeAt = 0, histName = null, histAt = 0;
  function pct(w) {
    if (!w || typeof w.ratio !== "number") return "no data";
    return (Math.floor(w.ratio * 100000) / 1000).toFixed(3) + "%";
  }
  function dur(s) {
    s = Math.round(s || 0);
    if (s < 60) return s + "s";
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d" : "") + (h ? h + "h" : "") + (m && !d ? m + "m" : "") || "0s";
  }
  function groupUptimeText(name) {
    var w = groupUptime[name];
    return w ? ' · <span class="gup" data-g-up="' + esc(name) + '">uptime 24h ' + esc(pct(w["24h"])) + " · 7d " + esc(pct(w["7d"])) + " · 30d " + esc(pct(w["30d"])) + "</span>" : "";
  }
  function refreshGroupUptimes() {
    var groups = ((status && status.groups) || []).slice(0, 100);
    if (!groups.length || Date.now() - groupUptimeAt < 60000) return Promise.resolve();
    groupUptimeAt = Date.now();
    return Promise.all(groups.map(function (g) {
      return getJSON("v1/groups/" + encodeURIComponent(g.name) + "/uptime").then(function (d) { groupUptime[g.name] = d.windows || {}; })
        .catch(function () { /* history unavailable: no uptime shown */ });
    })).then(function () { renderGroups(terms()); });
  }
  function bars(points) {
    var html = "";
    for (var i = 0; i < points.length; i++) {
      var p = points[i], st = p.state || "no_data";
      var tip = p.time + " " + st.replace("_", " ") + (p.probes ? " · " + p.probes + " probes, " + p.failures + " failed" : "");
      html += '<i class="b-' + esc(st) + '" data-state="' + esc(st) + '" title="' + esc(tip) + '"></i>';
    }
    return '<div class="bars" role="img" aria-label="last ' + points.length + ' minutes">' + html + "</div>";
  }
  function latencyChart(points) {
    var w = 600, h = 120, max = 0, i, lat = [];
    for (i = 0; i < points.length; i++) {
      var l = points[i].latency_ms;
      lat.push(l || null);
      if (l && l.p99 > max) max = l.p99;
    }
    if (!max) return '<p class="note">No latency recorded in this span.</p>';
    function line(key) {
      var pts = [];
      // A step a minute, under its bar, so a lone minute shows too.
      var step = w / lat.length;
      for (var j = 0; j < lat.length; j++) if (lat[j]) {
        var y = (h - lat[j][key] / max * (h - 4) - 2).toFixed(1);
        pts.push((j * step).toFixed(1) + "," + y, ((j + 1) * step).toFixed(1) + "," + y);
      }
      return '<polyline class="' + key + '" points="' + pts.join(" ") + '"/>';
    }
    return '<div class="lat"><svg viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none" role="img" aria-label="latency p50 and p99">' +
      '<line x1="0" y1="' + (h - 1) + '" x2="' + w + '" y2="' + (h - 1) + '"/>' + line("p50") + line("p99") + "</svg>" +
      '<p class="key"><span class="k50">— p50</span> · <span class="k99">— p99</span> · top ' + esc(ms(max)) + "</p></div>";
  }
  function showHistory(name) {
    histName = name;
    histAt = Date.now();
    $("hist").className = "";
    $("hist-h").textContent = "History of " + name;
    var n = encodeURIComponent(name);
    return Promise.all([
      getJSON("v1/services/" + n + "/uptime"),
      getJSON("v1/services/" + n + "/history?from=90m&step=1m"),
      getJSON("v1/outages?service=" + n + "&from=30d")
    ]).then(function (r) {
      if (histName !== name) return;
      var w = r[0].windows || {}, points = r[1].points || [], outages = r[2].outages || [];
      var up = '<div class="upt">' + ["24h", "7d", "30d"].map(function (k) {
        var x = w[k] || {};
        return '<span data-window="' + k + '">' + k + " <b>" + esc(pct(x)) + "</b>" + (x.no_data_seconds ? ' <small class="note">(' + esc(dur(x.no_data_seconds)) + " no data)</small>" : "") + "</span>";
      }).join("") + "</div>";
      var out = outages.length ? "<table><thead><tr><th>Outage start</th><th>Duration</th><th>Reason</th></tr></thead><tbody>" +
        outages.slice(0, 50).map(function (o) {
          return "<tr><td class=\"num\">" + when(o.start) + "</td><td class=\"num\">" + esc(dur(o.duration_seconds)) + (o.ongoing ? " (ongoing)" : "") +
            "</td><td>" + esc(o.reason) + "</td></tr>";
        }).join("") + "</tbody></table>" : '<p class="note">No outages in the last 30 days.</p>';
      $("hist-body").innerHTML = up + '<p class="note">Last ' + points.length + " minutes</p>" + bars(points) + latencyChart(points) +
        '<h3 class="note">Outages</h3>' + out;
    }).catch(function (err) {
      if (histName === name) $("hist-body").innerHTML = '<p class="note warn">History unavailable: ' + esc(err && err.message ? err.message : err) + "</p>";
    });
  }

  function render() {
    if (!status) return;
    var ts = terms();
    renderHeader();
    renderGroups(ts);
    renderServices(ts);
    observeSparks();
  }

  // ---------- refresh ----------
  function refreshStatus() {
    return getJSON("v1/status").then(function (doc) {
      var a = doc.agent || {};
      if (startedAt && a.started_at && a.started_at !== startedAt) { events = []; lastId = 0; hist = {}; explainAt = {}; }
      startedAt = a.started_at || startedAt;
      status = doc;
      services = {};
      var list = doc.services || [];
      for (var i = 0; i < list.length; i++) {
        var s = list[i];
        services[s.name] = s;
        if (s.last_probe_at && typeof s.latency_ms === "number") addPoint(s.name, Date.parse(s.last_probe_at), s.latency_ms, false);
      }
      render();
    });
  }
  function refreshEvents(round) {
    return getJSON("v1/events?since=" + lastId + "&limit=500").then(function (page) {
      var got = (page && page.events) || [];
      for (var i = 0; i < got.length; i++) if (typeof got[i].id !== "number" || got[i].id > lastId || lastId === 0) events.push(got[i]);
      if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
      if (page && typeof page.last_id === "number") lastId = page.last_id;
      if (got.length) renderEvents();
      if (got.length >= 500 && round < 20) return refreshEvents(round + 1);
    });
  }
  var timer = null, running = false;
  function tick() {
    clearTimeout(timer);
    if (running) return;
    running = true;
    refreshStatus().then(function () { return refreshEvents(0); }).then(function () {
      refreshGroupUptimes();
      if (histName && Date.now() - histAt > 60000) showHistory(histName);
      lastOk = Date.now();
      $("updated").textContent = "updated " + new Date(lastOk).toLocaleTimeString();
      if ($("banner").className === "err stale") banner("");
    }).catch(function (err) {
      banner("Cannot refresh: " + (err && err.message ? err.message : err) + (lastOk ? " — showing data from " + new Date(lastOk).toLocaleTimeString() : ""), "err stale");
    }).then(function () { running = false; clearTimeout(timer); timer = setTimeout(tick, REFRESH_MS); });
  }

  // ---------- controls ----------
  var pending = null;
  var ACTIONS = {
    hold: { title: "Hold group", fields: '<label for="f-reason">Reason</label><input id="f-reason" value="held by an operator">' },
    release: { title: "Release group", fields: '<p class="note">Resume automatic failover.</p>' },
    switchover: { title: "Switchover group", fields: null },
    maintenance: { title: "Maintenance for service", fields: '<label for="f-reason">Reason</label><input id="f-reason" value="maintenance by an operator">' +
      '<label for="f-for">For (optional, e.g. 30m, 2h)</label><input id="f-for" placeholder="until turned off">' },
    ready: { title: "Service ready again", fields: '<p class="note">End maintenance.</p>' }
  };
  function openDialog(act, group, service) {
    var spec = ACTIONS[act];
    if (!spec) return;
    pending = { act: act, group: group, service: service };
    $("dlg-title").textContent = spec.title + " " + (group || service);
    var fields = spec.fields;
    if (act === "switchover") {
      var g = ((status && status.groups) || []).filter(function (x) { return x.name === group; })[0];
      var opts = ((g && g.members) || []).map(function (m) {
        return '<option value="' + esc(m.name) + '">' + esc(m.name) + " (" + esc(m.state) + (m.active ? ", active" : "") + ")</option>";
      }).join("");
      fields = '<label for="f-to">Move to member</label><select id="f-to">' + opts + "</select>";
    }
    $("dlg-fields").innerHTML = fields;
    $("dlg-token").className = load("vitals-token") ? "hidden" : "";
    $("dlg-tok").value = "";
    $("dlg-err").textContent = "";
    var d = $("dlg");
    if (typeof d.showModal === "function") d.showModal(); else d.setAttribute("open", "");
  }
  function closeDialog() {
    var d = $("dlg");
    if (typeof d.close === "function") d.close(); else d.removeAttribute("open");
    pending = null;
  }
  function submitDialog(ev) {
    ev.preventDefault();
    if (!pending) return;
    var p = pending, token = load("vitals-token") || $("dlg-tok").value.trim();
    if (!token) { $("dlg-err").textContent = "The API token is needed (agent.token_file)."; return; }
    var body = {}, path;
    var val = function (id) { var el = $(id); return el ? el.value.trim() : ""; };
    if (p.group) {
      path = "v1/groups/" + encodeURIComponent(p.group) + "/" + p.act;
      if (p.act === "hold" && val("f-reason")) body.reason = val("f-reason");
      if (p.act === "switchover") body.to = val("f-to");
    } else {
      path = "v1/services/" + encodeURIComponent(p.service) + "/" + p.act;
      if (p.act === "maintenance") { if (val("f-reason")) body.reason = val("f-reason"); if (val("f-for")) body["for"] = val("f-for"); }
    }
    $("dlg-ok").disabled = true;
    // A 409 that `force` overrides (the last serving member of a group) shows
    // its message and asks before sending the command again with force.
    var send = function () {
      return fetch(path, { method: "POST", cache: "no-store", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (answer) {
            if (r.status === 401) { store("vitals-token", null); updateForget(); $("dlg-token").className = ""; }
            var message = (answer && answer.error && answer.error.message) || ("HTTP " + r.status);
            if (r.status === 409 && !body.force && message.indexOf('"force": true') >= 0) {
              $("dlg-err").textContent = message;
              if (!window.confirm(message.replace(/; send "force": true to do it anyway$/, "") + ".\n\nDo it anyway?")) throw new Error(message);
              body.force = true;
              return send();
            }
            if (!r.ok) throw new Error(message);
            store("vitals-token", token);
            updateForget();
            closeDialog();
            var n = (answer && answer.events) ? answer.events.length : 0;
            banner(p.act + " " + (p.group || p.service) + ": done" + (n ? ", " + n + " event" + (n === 1 ? "" : "s") : ""), "ok");
            tick();
          });
        });
    };
    send()
      .catch(function (err) { $("dlg-err").textContent = String(err && err.message ? err.message : err); })
      .then(function () { $("dlg-ok").disabled = false; });
  }
  function updateForget() { $("forget").className = load("vitals-token") ? "" : "hidden"; }

  // ---------- wiring ----------
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!t || typeof t.closest !== "function") return;
    var hb = t.closest("button[data-hist]");
    if (hb) { showHistory(hb.getAttribute("data-hist")); return; }
    var b = t.closest("button[data-act]");
    if (b) { openDialog(b.getAttribute("data-act"), b.getAttribute("data-g"), b.getAttribute("data-s")); return; }
    var chip = t.closest("button[data-state]");
    if (chip) { $("filter").value = filterText = "state:" + chip.getAttribute("data-state"); render(); renderEvents(); return; }
    var sum = t.closest("summary");
    if (sum && sum.parentNode && sum.parentNode.getAttribute("data-k") && !terms().length) {
      var det = sum.parentNode;
      ev.preventDefault(); // render() draws the body, so toggle through the state
      openState[det.getAttribute("data-k")] = !det.open;
      render();
    }
  });
  var filterTimer = null;
  $("filter").addEventListener("input", function () {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(function () { filterText = $("filter").value; render(); renderEvents(); }, 120);
  });
  function setAll(open) {
    var groups = (status && status.groups) || [];
    for (var i = 0; i < groups.length; i++) openState["g:" + groups[i].name] = open;
    openState.all = open;
    render();
  }
  $("expand").addEventListener("click", function () { setAll(true); });
  $("collapse").addEventListener("click", function () { setAll(false); });
  $("forget").addEventListener("click", function () { store("vitals-token", null); updateForget(); banner("Token forgotten.", "ok"); });
  $("hist-close").addEventListener("click", function () { histName = null; $("hist").className = "hidden"; });
  $("dlg-form").addEventListener("submit", submitDialog);
  $("dlg-cancel").addEventListener("click", closeDialog);
  // The close event comes a task after close(): by then the dialog may have
  // been opened again for another control, whose command must not be dropped.
  $("dlg").addEventListener("close", function () { if (!$("dlg").open) pending = null; });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
  updateForget();
  tick();
})();
