"""HTML forms as a browser submits them: the benchmark posts a CRF page's own form unchanged."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

REASON = "Benchmark: the same values saved again"
#: A form's encoding unless it says otherwise (HTML: ``enctype`` defaults to this).
URLENCODED = "application/x-www-form-urlencoded"


@dataclass
class HtmlForm:
    method: str
    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    unticked: set[str] = field(default_factory=set)  # checkboxes shown but not ticked
    enctype: str = URLENCODED  # how a browser encodes the submitted body

    def names(self) -> set[str]:
        return {name for name, _value in self.fields}


class FormParser(HTMLParser):
    """Collects every <form> with the values a browser would submit (first submit button)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self._form: HtmlForm | None = None
        self._select: tuple[str, bool, list[tuple[str, bool]]] | None = None
        self._option: list[str] | None = None
        self._option_attrs: dict | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._submitted = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = HtmlForm(
                a.get("method", "get").lower(),
                a.get("action", ""),
                enctype=a.get("enctype", "").lower() or URLENCODED,
            )
            self._submitted = False
            self.forms.append(self._form)
            return
        if self._form is None or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            self._input(name, a)
        elif tag == "button" and name and a.get("type", "submit") == "submit":
            self._submit(name, a.get("value", ""))
        elif tag == "select" and name:
            self._select = (name, "multiple" in a, [])
        elif tag == "option" and self._select is not None:
            self._option, self._option_attrs = [], a
        elif tag == "textarea" and name:
            self._textarea = (name, [])

    def _input(self, name: str, a: dict) -> None:
        kind = a.get("type", "text").lower()
        if kind in ("checkbox", "radio"):
            if "checked" in a:
                self._form.fields.append((name, a.get("value", "on")))
            elif kind == "checkbox":
                self._form.unticked.add(name)
        elif kind in ("submit", "image"):
            self._submit(name, a.get("value", ""))
        elif kind not in ("file", "reset", "button"):
            self._form.fields.append((name, a.get("value", "")))

    def _submit(self, name: str, value: str) -> None:
        if not self._submitted:
            self._submitted = True
            self._form.fields.append((name, value))

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option.append(data)
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self._option is not None:
            self._end_option()
        elif tag == "select" and self._select is not None:
            if self._option is not None:
                self._end_option()
            self._end_select()
        elif tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            text = "".join(parts)
            self._form.fields.append((name, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "form":
            self._form = None

    def _end_option(self) -> None:
        a = self._option_attrs or {}
        value = a.get("value", "".join(self._option or []).strip())
        self._select[2].append((value, "selected" in a))
        self._option = self._option_attrs = None

    def _end_select(self) -> None:
        name, multiple, options = self._select
        chosen = [value for value, selected in options if selected]
        if not chosen and not multiple and options:
            chosen = [options[0][0]]  # a browser submits the first option of a plain select
        self._form.fields.extend((name, value) for value in (chosen if multiple else chosen[:1]))
        self._select = None


def parse_forms(html: str) -> list[HtmlForm]:
    parser = FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def entry_form(html: str, path: str) -> HtmlForm:
    """The page's data-entry form: a POST form to the page itself, the one with most fields."""
    candidates = [
        f for f in parse_forms(html) if f.method == "post" and f.action in ("", ".", path)
    ]
    if not candidates:
        raise LookupError(f"{path}: no POST form to the page itself")
    return max(candidates, key=lambda f: len(f.fields))


#: Confirmations a user ticks when saving a record again as it was (the SBRT course's protocol
#: deviations were confirmed when it was first saved).
CONFIRMATIONS = ("confirm_deviations",)


def post_data(form: HtmlForm, reason: str = REASON) -> dict[str, list[str]]:
    """The form's values as the test client takes them, with a reason for change."""
    data: dict[str, list[str]] = {}
    for name, value in form.fields:
        if name != "csrfmiddlewaretoken":
            data.setdefault(name, []).append(value)
    if "reason" in data or "reason" not in form.names():
        data["reason"] = [reason]
    for name in CONFIRMATIONS:
        if name in form.unticked:
            data[name] = ["on"]
    return data


def form_errors(html: str) -> list[str]:
    """The error messages a refused form shows (Bootstrap/crispy and Django's own classes)."""
    found = re.findall(
        r'class="[^"]*(?:invalid-feedback|errorlist|alert-danger|alert alert-block)[^"]*"[^>]*>'
        r"(.*?)</",
        html,
        flags=re.S,
    )
    texts = (" ".join(unescape(re.sub(r"<[^>]+>", " ", text)).split()) for text in found)
    return [text for text in texts if text][:10]
