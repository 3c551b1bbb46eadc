/* CTCAE v5.0 term picker for the adverse event form (issue #6).
 *
 * Progressive enhancement: without JavaScript the form keeps its plain <select> of terms grouped
 * by system organ class. With it, the select is hidden (it still carries the chosen term id), a
 * search box queries the ctcae_term_search view, and the definition of the chosen grade is shown
 * next to the grade select; grades the term does not define are disabled.
 * Translated messages come from data-msg-* attributes set by the server.
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var select = document.querySelector("select[data-ctcae-term]");
    if (!select) return;
    var gradeSelect = document.querySelector("select[data-ctcae-grade]");
    var gradeText = document.querySelector("[data-ctcae-grade-text]");
    var url = select.getAttribute("data-search-url");
    var msg = {
      placeholder: select.getAttribute("data-msg-placeholder") || "",
      none: select.getAttribute("data-msg-none") || "",
      undefinedGrade: select.getAttribute("data-msg-undefined") || "",
    };
    var grades = null; // {"1": "text", ...} of the chosen term, null when unknown
    var timer = null;

    var box = document.createElement("div");
    box.className = "position-relative";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "form-control";
    input.autocomplete = "off";
    input.placeholder = msg.placeholder;
    input.id = select.id + "_search";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", select.id + "_results");
    input.setAttribute("data-testid", "ctcae-search");
    var list = document.createElement("div");
    list.className = "list-group position-absolute w-100 shadow-sm d-none";
    list.style.zIndex = "1000";
    list.style.maxHeight = "20rem";
    list.style.overflowY = "auto";
    list.id = select.id + "_results";
    list.setAttribute("role", "listbox");
    box.appendChild(input);
    box.appendChild(list);
    select.parentNode.insertBefore(box, select);
    select.classList.add("d-none");
    var label = document.querySelector('label[for="' + select.id + '"]');
    if (label) label.setAttribute("for", input.id);

    function showList(show) {
      list.classList.toggle("d-none", !show);
      input.setAttribute("aria-expanded", show ? "true" : "false");
    }

    function updateGrade() {
      if (!gradeSelect || !gradeText) return;
      var g = gradeSelect.value;
      Array.prototype.forEach.call(gradeSelect.options, function (option) {
        if (!option.value) return;
        option.disabled = grades !== null && !(option.value in grades);
      });
      if (!g || grades === null) {
        gradeText.textContent = "";
        return;
      }
      if (g in grades) {
        gradeText.textContent = grades[g];
        gradeText.classList.remove("text-danger");
      } else {
        gradeText.textContent = msg.undefinedGrade.replace("%(grade)s", g);
        gradeText.classList.add("text-danger");
      }
    }

    function choose(term) {
      var value = String(term.id);
      if (!select.querySelector('option[value="' + value + '"]')) {
        select.appendChild(new Option(term.term, value));
      }
      select.value = value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      input.value = term.term;
      grades = term.grades;
      showList(false);
      updateGrade();
    }

    function render(terms) {
      list.textContent = "";
      if (!terms.length) {
        var empty = document.createElement("div");
        empty.className = "list-group-item small text-muted";
        empty.textContent = msg.none;
        list.appendChild(empty);
      }
      terms.forEach(function (term) {
        var item = document.createElement("button");
        item.type = "button";
        item.className = "list-group-item list-group-item-action py-1";
        item.setAttribute("role", "option");
        item.setAttribute("data-testid", "ctcae-result");
        var name = document.createElement("div");
        name.textContent = term.term;
        var soc = document.createElement("div");
        soc.className = "small text-muted";
        soc.textContent = term.soc;
        item.appendChild(name);
        item.appendChild(soc);
        item.addEventListener("click", function () {
          choose(term);
        });
        list.appendChild(item);
      });
      showList(true);
    }

    function fetchTerms(params, then) {
      fetch(url + "?" + new URLSearchParams(params).toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.ok ? response.json() : [];
        })
        .then(then)
        .catch(function () {
          /* network trouble: the user can retype */
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2) {
        showList(false);
        return;
      }
      timer = setTimeout(function () {
        fetchTerms({ q: q }, render);
      }, 200);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") showList(false);
      if (event.key === "Enter") {
        event.preventDefault(); // never submit the form from the search box
        var first = list.querySelector("button");
        if (first && !list.classList.contains("d-none")) first.click();
      }
    });
    document.addEventListener("click", function (event) {
      if (!box.contains(event.target)) showList(false);
    });
    if (gradeSelect) gradeSelect.addEventListener("change", updateGrade);

    if (select.value) {
      var selected = select.options[select.selectedIndex];
      input.value = selected ? selected.text : "";
      fetchTerms({ id: select.value }, function (terms) {
        if (terms.length) {
          grades = terms[0].grades;
          updateGrade();
        }
      });
    }
  });
})();
