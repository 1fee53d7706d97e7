"""BIN routing: which issuer link serves a PAN. Longest matching prefix wins."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class Route:
    prefix: str
    link: str


@attrs.frozen
class Router:
    routes: tuple[Route, ...]  # sorted longest prefix first

    @classmethod
    def from_table(cls, table: Iterable[tuple[str, str]]) -> Router:
        """From (prefix, link) pairs (``settings.routes``)."""
        routes = [Route(prefix, link) for prefix, link in table]
        routes.sort(key=lambda route: len(route.prefix), reverse=True)
        return cls(tuple(routes))

    def link_for(self, pan: str) -> str | None:
        """The link name for this PAN, or None when no route matches (response code 15)."""
        for route in self.routes:
            if pan.startswith(route.prefix):
                return route.link
        return None
