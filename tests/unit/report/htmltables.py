"""Read the tables of an HTML page back as text, to check what a reader sees in each cell."""

from __future__ import annotations

from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._stack:
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> list[list[list[str]]]:
    """Every table (innermost first) as rows of cell texts."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def table_with_header(html: str, *headers: str) -> list[list[str]]:
    for table in html_tables(html):
        if table and all(h in table[0] for h in headers):
            return table
    raise AssertionError(f"no table with headers {headers}")


def row(table: list[list[str]], first_cell: str) -> dict[str, str]:
    """The row whose first cell is ``first_cell``, as header → text."""
    for r in table[1:]:
        if r and r[0] == first_cell:
            return dict(zip(table[0], r, strict=True))
    raise AssertionError(f"no row {first_cell!r} in {[r[0] for r in table[1:]]}")
