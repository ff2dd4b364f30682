"""One collector per file. Object collectors render cached text from the view (exposition.RowCache);
status collectors (backend, kubernetes) are client_python custom collectors built fresh each scrape."""

from typing import Protocol

from ..view import View


class TextCollector(Protocol):
    """An object collector: the exposition text of its metric families for a view."""

    def text(self, view: View) -> str: ...
