// Progress of a background job (PDF report, data export): polls the element's data-status-url
// (JSON {progress, finished}) every data-poll seconds, moves the bar, reloads when finished.
(function () {
  document.querySelectorAll("[data-job-progress]").forEach(function (box) {
    if (box.dataset.finished === "1") { return; }
    var bar = box.querySelector(".progress-bar");
    var wait = 1000 * Number(box.dataset.poll || 2);
    function poll() {
      fetch(box.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (s) {
          bar.style.width = s.progress + "%";
          bar.textContent = s.progress + " %";
          bar.parentNode.setAttribute("aria-valuenow", s.progress);
          if (s.finished) { window.location.reload(); } else { setTimeout(poll, wait); }
        })
        .catch(function () { setTimeout(poll, 3 * wait); });
    }
    setTimeout(poll, wait);
  });
})();
