/* docqueue admin pages: live polling the user controls, confirmations, selection, charts.
 * No inline script anywhere (the CSP forbids it): pages mark elements with data-* attributes
 * and this file finds them. */
(function () {
  "use strict";

  var INTERVAL_KEY = "docqueue.pollSeconds";

  function selectedRows() {
    return document.querySelectorAll('input[name="job_id"]:checked').length;
  }

  /* Live polling: each [data-poll-url] element is refreshed (htmx swap) every N seconds,
   * paused while the tab is hidden or rows are selected; N is the user's choice, 0 stops it. */
  function startPolling() {
    var targets = document.querySelectorAll("[data-poll-url]");
    var select = document.getElementById("poll-interval");
    var state = document.getElementById("poll-state");
    if (!targets.length || !select) return;
    var saved = window.localStorage.getItem(INTERVAL_KEY);
    if (saved !== null && select.querySelector('option[value="' + saved + '"]')) select.value = saved;
    var timer = null;

    function say(text) { if (state) state.textContent = text; }

    function tick() {
      if (document.hidden) return say("paused while this tab is hidden");
      if (selectedRows()) return say("paused while rows are selected");
      say("live");
      targets.forEach(function (target) {
        htmx.ajax("GET", target.getAttribute("data-poll-url"), { target: target, swap: "innerHTML" });
      });
      refreshCharts();
    }

    function schedule() {
      if (timer) window.clearInterval(timer);
      timer = null;
      var seconds = parseInt(select.value, 10) || 0;
      window.localStorage.setItem(INTERVAL_KEY, String(seconds));
      if (!seconds) return say("stopped");
      say("live");
      timer = window.setInterval(tick, seconds * 1000);
    }

    select.addEventListener("change", schedule);
    // Hidden: say so now rather than at the next tick; shown again: refresh at once.
    document.addEventListener("visibilitychange", function () { if (timer) tick(); });
    schedule();
  }

  /* Forms marked data-confirm ask first; data-confirm-ACTION asks only for that submit button's action. */
  function confirmForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var submitter = event.submitter;
      var message = form.getAttribute("data-confirm");
      if (submitter && submitter.value) message = form.getAttribute("data-confirm-" + submitter.value) || message;
      if (message && !window.confirm(message)) event.preventDefault();
    });
  }

  function selection() {
    var all = document.getElementById("select-all");
    var count = document.getElementById("selection-count");
    function update() {
      var n = selectedRows();
      if (count) count.textContent = n ? n + " selected (live refresh paused)" : "Select jobs to act on them.";
    }
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll('input[name="job_id"]').forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    document.addEventListener("change", function (event) {
      if (event.target.name === "job_id") update();
    });
  }

  /* Charts: completions (bars) and average wait (line) per bucket, from [data-series-url]. */
  var charts = [];
  var lastChartRefresh = 0;

  function drawChart(element, data) {
    var width = Math.max(element.clientWidth, 280);
    var options = {
      width: width,
      height: 200,
      series: [
        {},
        { label: "completed", stroke: "#2f6fdf", fill: "rgba(47,111,223,0.15)", scale: "n" },
        { label: "avg wait (s)", stroke: "#b42318", scale: "s" }
      ],
      axes: [{}, { scale: "n", label: "jobs" }, { scale: "s", side: 1, label: "wait s", grid: { show: false } }]
    };
    element.textContent = "";
    return new uPlot(options, [data.times, data.completed, data.avg_wait_seconds], element);
  }

  function loadChart(element, index) {
    fetch(element.getAttribute("data-series-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (charts[index]) charts[index].setData([data.times, data.completed, data.avg_wait_seconds]);
        else charts[index] = drawChart(element, data);
      });
  }

  function refreshCharts(force) {
    if (typeof uPlot === "undefined") return;
    var now = Date.now();
    if (!force && now - lastChartRefresh < 30000) return;
    lastChartRefresh = now;
    document.querySelectorAll("[data-series-url]").forEach(loadChart);
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmForms();
    selection();
    startPolling();
    refreshCharts(true);
  });
})();
