"""Enumerate every URL pattern of the project, so that a new page cannot escape the access tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>[^)]*\)")


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "sites/<int:site_pk>/edit/"
    name: str
    callback: object
    params: tuple[str, ...]

    @property
    def model_admin(self):
        return getattr(self.callback, "model_admin", None)

    def build(self, values: dict[str, object]) -> str:
        def replace(match: re.Match) -> str:
            key = match.group("name") or match.group("rname")
            return str(values[key])

        path = _PARAM.sub(replace, self.template)
        return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def _pattern_text(pattern) -> str:
    return str(pattern.pattern)


def walk(patterns=None, prefix: str = "", namespace: str = "") -> list[Route]:
    routes: list[Route] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        text = prefix + _pattern_text(entry).lstrip("^")
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes.extend(walk(entry.url_patterns, text, ns))
        elif isinstance(entry, URLPattern):
            params = tuple(m.group("name") or m.group("rname") for m in _PARAM.finditer(text))
            routes.append(Route(text, f"{namespace}{entry.name or ''}", entry.callback, params))
    return routes
