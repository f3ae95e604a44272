/* clickvision book: client-side search over window.CV_SEARCH (written by clickvision.book).
 * Works from file:// (no fetch). search(index, query) is pure, and exported for Node tests. */
(function (root) {
  "use strict";

  function tokens(text) {
    return (String(text).toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}.\-]*/gu) || [])
      .map(function (t) { return t.replace(/[.\-]+$/, ""); })
      .filter(function (t) { return t.length > 0; });
  }

  function count(haystack, needle) {
    var n = 0, i = haystack.indexOf(needle);
    while (i !== -1) { n += 1; i = haystack.indexOf(needle, i + needle.length); }
    return n;
  }

  function snippet(text, terms, width) {
    var lower = text.toLowerCase(), at = -1;
    for (var k = 0; k < terms.length && at === -1; k++) { at = lower.indexOf(terms[k]); }
    var start = Math.max(0, at - Math.floor(width / 3));
    var s = text.slice(start, start + width);
    return (start > 0 ? "\u2026" : "") + s + (start + width < text.length ? "\u2026" : "");
  }

  /* Every section that contains every query term (in its page title, heading or text),
   * ranked by heading/title hits first, then by term counts. */
  function search(index, query, limit) {
    var terms = tokens(query);
    if (!terms.length) { return []; }
    var hits = [];
    index.forEach(function (page) {
      page.sections.forEach(function (sec) {
        var head = (page.title + " " + sec.heading).toLowerCase();
        var body = sec.text.toLowerCase();
        var score = 0;
        for (var k = 0; k < terms.length; k++) {
          var inHead = count(head, terms[k]), inBody = count(body, terms[k]);
          if (inHead + inBody === 0) { return; }
          score += 10 * inHead + Math.min(inBody, 20);
        }
        hits.push({url: page.url + (sec.id ? "#" + encodeURIComponent(sec.id) : ""), page: page.title,
                   heading: sec.heading, snippet: snippet(sec.text, terms, 160), score: score});
      });
    });
    hits.sort(function (a, b) { return b.score - a.score || (a.url < b.url ? -1 : 1); });
    return hits.slice(0, limit || 50);
  }

  var api = {search: search, tokens: tokens};
  if (typeof module !== "undefined" && module.exports) { module.exports = api; }
  root.cvBook = api;
  if (typeof document === "undefined") { return; }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function hitHtml(h, base) {
    return '<a href="' + esc(base + h.url) + '">' + esc(h.page) + (h.heading && h.heading !== h.page ? " \u203a " + esc(h.heading) : "")
      + "</a><small>" + esc(h.snippet) + "</small>";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var index = root.CV_SEARCH || [];
    var nav = document.querySelector(".cv-nav");
    var base = nav ? nav.getAttribute("data-root") || "" : "";
    var input = document.getElementById("cv-search-input");
    var box = document.getElementById("cv-search-results");
    if (input && box) {
      input.addEventListener("input", function () {
        var hits = search(index, input.value, 8);
        box.hidden = !input.value.trim();
        box.innerHTML = hits.length ? hits.map(function (h) { return '<div class="cv-hit">' + hitHtml(h, base) + "</div>"; }).join("")
                                    : (input.value.trim() ? "<small>No match.</small>" : "");
      });
    }
    var list = document.getElementById("cv-search-page");
    if (list) {
      var q = new URLSearchParams(window.location.search).get("q") || "";
      if (input) { input.value = q; }
      var hits = search(index, q, 100);
      document.getElementById("cv-search-summary").textContent =
        q ? hits.length + " section" + (hits.length === 1 ? "" : "s") + " match \u201c" + q + "\u201d." : "Type a query in the box.";
      list.innerHTML = hits.map(function (h) { return '<li class="cv-hit">' + hitHtml(h, base) + "</li>"; }).join("");
    }
  });
})(typeof window !== "undefined" ? window : globalThis);
