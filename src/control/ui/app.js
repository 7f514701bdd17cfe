// SPDX-License-Identifier: Apache-2.0
// meshd's dashboard: polls /v1/ui/summary (every refresh_ms, 2 s) and renders it. Everything is
// built with DOM calls and textContent, never from HTML strings, so that names from the store or
// the proxies are shown as text whatever they hold.
"use strict";

(function () {
  const SUMMARY = "/v1/ui/summary";
  const DEFAULT_REFRESH_MS = 2000;
  const FETCH_TIMEOUT_MS = 10000;
  const TOKEN_KEY = "mesh-dashboard-token";

  let timer = null;

  // --- the token: reads from a non-loopback address (or with meshd --auth-reads) need it ---

  // /ui#token=TOKEN: the fragment never leaves the browser (no server log holds it).
  function takeTokenFromHash() {
    const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (!m) return false;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    // Out of the address bar and the history: it is a secret.
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return true;
  }

  function authHeaders() {
    const t = sessionStorage.getItem(TOKEN_KEY);
    return t ? { Authorization: "Bearer " + t } : {};
  }

  // --- small DOM helpers ---

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, String(v));
      else if (k === "title") e.title = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      const text = typeof c === "string" || typeof c === "number";
      e.appendChild(text ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function td(col, text, cls) {
    return el("td", { "data-col": col, class: cls }, text);
  }

  function replaceRows(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...rows);
    if (!rows.length) {
      tbody.appendChild(el("tr", {}, el("td", { colspan: columns, class: "empty" }, emptyText)));
    }
  }

  function bar(fraction, observed) {
    const span = el("span");
    const f = fraction === null || fraction === undefined ? 0 : Math.max(0, Math.min(1, fraction));
    span.style.width = (f * 100).toFixed(1) + "%";
    return el("span", { class: observed ? "bar observed" : "bar" }, span);
  }

  // --- formats ---

  const DASH = "\u2014";

  function pct(x) {
    return x === null || x === undefined ? DASH : (x * 100).toFixed(1) + "%";
  }

  function rate(x) {
    if (x === null || x === undefined) return DASH;
    return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0);
  }

  function latency(seconds) {
    if (seconds === null || seconds === undefined) return DASH;
    const ms = seconds * 1000;
    if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
    return (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + " ms";
  }

  function count(x) {
    return x === null || x === undefined ? DASH : String(x);
  }

  function age(ms) {
    if (ms === null || ms === undefined) return DASH;
    if (ms < 1000) return ms + " ms ago";
    if (ms < 120000) return (ms / 1000).toFixed(1) + " s ago";
    return Math.round(ms / 60000) + " min ago";
  }

  function clock(unixMs) {
    if (!unixMs) return DASH;
    return new Date(unixMs).toLocaleTimeString();
  }

  function list(items, whenEmpty) {
    return items && items.length ? items.join(", ") : whenEmpty;
  }

  // --- sections ---

  function renderServices(s) {
    const note = document.getElementById("window-note");
    note.textContent = s.window.span_ms
      ? `Rates, success and latency over the last ${(s.window.span_ms / 1000).toFixed(0)} s ` +
        `(window ${(s.window.target_ms / 1000).toFixed(0)} s), from ${s.proxies_read} of ` +
        `${s.proxies.length} proxies.`
      : "Rates appear with meshd's second reading of the proxies (a couple of seconds).";
    const rows = s.services.map((svc) => {
      const w = svc.window || {};
      return el("tr", { "data-service": svc.name },
        td("name", svc.name, "mono"),
        td("namespace", list(svc.namespaces, DASH)),
        td("sidecars", count(svc.sidecars), "num"),
        td("rps", rate(w.rps), "num"),
        td("success", pct(w.success_rate), "num"),
        td("p50", latency(w.p50), "num"),
        td("p95", latency(w.p95), "num"),
        td("p99", latency(w.p99), "num"),
        td("requests-window", count(w.requests), "num"),
        td("requests-total", count(svc.total.requests), "num"));
    });
    replaceRows(document.querySelector("#services tbody"), rows, 10, "No services yet.");
  }

  function renderRoute(vs, r) {
    const rows = r.destinations.map((d) =>
      el("tr", {
        "data-vs": vs.namespace + "/" + vs.name, "data-route": r.name, "data-dest": d.service,
      },
        td("host", d.host, "mono"),
        el("td", { "data-col": "weight" }, bar(d.weight / 100, false), d.weight + "%"),
        el("td", { "data-col": "share-window" }, bar(d.share_window, true), pct(d.share_window)),
        td("requests-window", count(d.requests_window), "num"),
        td("rps", rate(d.rps), "num"),
        td("share-total", pct(d.share_total), "num"),
        td("requests-total", count(d.requests_total), "num")));
    const table = el("table", {},
      el("thead", {}, el("tr", {},
        el("th", {}, "Destination"), el("th", {}, "Weight (configured)"),
        el("th", {}, "Observed (window)"), el("th", { class: "num" }, "Requests (window)"),
        el("th", { class: "num" }, "RPS"), el("th", { class: "num" }, "Observed (since start)"),
        el("th", { class: "num" }, "Requests (since start)"))),
      el("tbody", {}, ...rows));
    const box = el("div", { class: "route", "data-route": r.name },
      el("div", { class: "route-name" }, "route " + r.name));
    if (r.ambiguous) {
      box.appendChild(el("p", { class: "note warn" },
        "Another VirtualService served by the same proxies counts requests under the same route " +
        "name and destination: the observed figures include both."));
    }
    box.appendChild(table);
    return box;
  }

  function renderSplits(s) {
    const container = document.getElementById("vs-list");
    const cards = s.virtual_services.map((vs) => {
      const served = vs.gateways.length
        ? `gateways ${vs.gateways.join(", ")} ` +
          `(${vs.proxies} ${vs.proxies === 1 ? "proxy" : "proxies"} registered` +
          (vs.sidecars ? `, ${vs.sidecars} sidecars` : "") + ")"
        : `the sidecars (${vs.sidecars} registered)`;
      return el("div", { class: "vs", "data-vs": vs.namespace + "/" + vs.name },
        el("h3", {}, `VirtualService ${vs.namespace}/${vs.name}`),
        el("p", { class: "note" }, `hosts ${list(vs.hosts, DASH)}; served by ${served}`),
        ...vs.routes.map((r) => renderRoute(vs, r)));
    });
    container.replaceChildren(...cards);
    if (!cards.length) container.appendChild(el("p", { class: "empty" }, "No VirtualServices."));
  }

  function renderProxies(s) {
    const rows = s.proxies.map((p) =>
      el("tr", { "data-proxy": p.id },
        td("id", p.id, "mono"),
        td("role", p.role),
        td("target", p.role === "gateway" ? p.gateway : p.service),
        td("namespace", p.namespace),
        td("address", p.address || DASH, "mono"),
        td("admin", p.admin || DASH, "mono"),
        td("acked", p.acked_version || DASH, "mono"),
        td("latest", p.latest_version || DASH, "mono"),
        td("status", p.status, "status-" + p.status),
        td("heartbeat", age(p.heartbeat_age_ms), "num"),
        el("td", {
          "data-col": "stats", class: p.stats.ok ? null : "bad", title: p.stats.error || "",
        },
          p.stats.ok ? "read" : (p.stats.error || "not read"))));
    replaceRows(document.querySelector("#proxies tbody"), rows, 11, "No proxy is registered.");
  }

  function renderPolicies(s) {
    const container = document.getElementById("policy-list");
    const cards = s.security_policies.map((sp) => {
      const rules = sp.rules.map((r) =>
        el("tr", { "data-rule": r.id },
          td("id", r.id, "mono"),
          td("from", list(r.from, "anyone")),
          td("to", list(r.to, "every service of the namespace")),
          td("methods", list(r.methods, "any")),
          td("paths", list(r.paths, "any"), "mono"),
          td("allowed", count(r.allowed_total), "num")));
      const mtls = sp.mtls.mode
        ? `mTLS ${sp.mtls.mode}` +
          (sp.mtls.certificate_authority ? `, CA ${sp.mtls.certificate_authority}` : "")
        : "no mTLS setting";
      const card = el("div", { class: "policy", "data-policy": sp.namespace + "/" + sp.name },
        el("h3", {}, `SecurityPolicy ${sp.namespace}/${sp.name}`),
        el("p", { class: "note", "data-col": "mtls" },
          `${mtls}; covers ${list(sp.services, "every service of namespace " + sp.namespace)}`));
      if (rules.length) {
        card.appendChild(el("table", {},
          el("thead", {}, el("tr", {},
            el("th", {}, "Rule"), el("th", {}, "From"), el("th", {}, "To"), el("th", {}, "Methods"),
            el("th", {}, "Paths"), el("th", { class: "num" }, "Allowed (since start)"))),
          el("tbody", {}, ...rules)));
      } else {
        card.appendChild(el("p", { class: "empty" },
          "No authorization rules: every caller is allowed."));
      }
      return card;
    });
    container.replaceChildren(...cards);
    if (!cards.length) container.appendChild(el("p", { class: "empty" }, "No SecurityPolicies."));

    const rows = s.denials.map((d) =>
      el("tr", { "data-source": d.source, "data-rule": d.rule, "data-service": d.service },
        td("service", d.service),
        td("namespace", d.namespace),
        td("source", d.source, "mono"),
        td("rule", d.rule, "mono"),
        td("denied-window", count(d.denied_window), "num"),
        td("denied-total", count(d.denied_total), "num"),
        td("last", d.last_denied_ms ? clock(d.last_denied_ms) : "before meshd looked")));
    replaceRows(document.querySelector("#denials tbody"), rows, 7, "No request was denied.");
  }

  // --- polling ---

  function setStatus(state, text) {
    const st = document.getElementById("status");
    st.dataset.state = state;
    st.textContent = text;
    document.body.dataset.state = state;
  }

  function showMessage(text) {
    const m = document.getElementById("message");
    m.textContent = text;
    m.hidden = !text;
  }

  function render(s) {
    document.getElementById("meta").textContent =
      `meshd ${s.version} \u00b7 store version ${s.store_version} \u00b7 ` +
      `${s.proxies.length} proxies`;
    renderServices(s);
    renderSplits(s);
    renderProxies(s);
    renderPolicies(s);
    document.getElementById("content").hidden = false;
    document.getElementById("token-form").hidden = true;
    showMessage("");
    setStatus("live", "live \u00b7 updated " + clock(s.generated_ms));
    // For tests and scripts: which summary the page shows.
    document.body.dataset.generated = String(s.generated_ms);
  }

  async function errorText(resp) {
    try {
      const body = await resp.text();
      try {
        const j = JSON.parse(body);
        if (j && j.error && j.error.message) return j.error.message;
      } catch (e) {
        // not JSON: the text itself
      }
      return body.trim() || "HTTP " + resp.status;
    } catch (e) {
      return "HTTP " + resp.status;
    }
  }

  async function poll() {
    let next = DEFAULT_REFRESH_MS;
    const ctl = new AbortController();
    const abort = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch(SUMMARY, {
        headers: authHeaders(), cache: "no-store", signal: ctl.signal,
      });
      if (resp.ok) {
        const s = await resp.json();
        render(s);
        if (s.refresh_ms > 0) next = s.refresh_ms;
      } else if (resp.status === 401) {
        setStatus("auth", "token needed");
        document.getElementById("token-form").hidden = false;
        showMessage(await errorText(resp));
      } else if (resp.status === 404) {
        setStatus("off", "dashboard off");
        document.getElementById("content").hidden = true;
        showMessage(await errorText(resp));
      } else {
        setStatus("error", "meshd answered " + resp.status);
        showMessage(await errorText(resp));
      }
    } catch (e) {
      setStatus("error", "cannot reach meshd");
      const why = e && e.name === "AbortError" ? "no answer within 10 s" : String(e);
      showMessage("Cannot reach meshd: " + why +
        ". The figures below are the last ones received; retrying.");
    } finally {
      clearTimeout(abort);
      timer = setTimeout(poll, next);
    }
  }

  function pollNow() {
    clearTimeout(timer);
    poll();
  }

  function start() {
    takeTokenFromHash();
    // A token pasted into the address of the open page comes as a new fragment, not a load.
    window.addEventListener("hashchange", () => {
      if (takeTokenFromHash()) pollNow();
    });
    document.getElementById("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = document.getElementById("token").value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      pollNow();
    });
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
