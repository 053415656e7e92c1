"""The project's table: rows of values under named columns, as text or as HTML.

Layer summaries, record overviews and metric reports are all a :class:`Table`. A row is read by
column name (``table.rows_where(type="Conv2d")[0]["RF"]``), never by position, and a wide table
can be narrowed to the columns a page needs with :meth:`Table.select`.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass
class Table:
    """Rows of values with headers; prints as text and shows as HTML in a notebook.

    Attributes:
        headers: column names.
        rows: one list of values per row, in the order of ``headers``.
        caption: a line saying what the table is (and where its numbers come from).
    """

    headers: list[str]
    rows: list[list]
    caption: str = ""

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(f"row {i} has {len(row)} values for {len(self.headers)} "
                                 f"columns {self.headers}")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        """Each row as a dict from column name to value."""
        for row in self.rows:
            yield dict(zip(self.headers, row, strict=True))

    def __getitem__(self, i: int) -> dict:
        """Row ``i`` as a dict from column name to value."""
        return dict(zip(self.headers, self.rows[i], strict=True))

    def column(self, header: str) -> list:
        """The values of one column."""
        i = self._index(header)
        return [row[i] for row in self.rows]

    def rows_where(self, **equal) -> list[dict]:
        """The rows whose columns equal the given values, e.g. ``rows_where(type="Conv2d")``."""
        for header in equal:
            self._index(header)
        return [row for row in self if all(row[h] == v for h, v in equal.items())]

    def select(self, headers: Sequence[str], caption: str | None = None) -> Table:
        """The same rows with only ``headers``, in that order (a compact view)."""
        index = [self._index(h) for h in headers]
        return Table(list(headers), [[row[i] for i in index] for row in self.rows],
                     self.caption if caption is None else caption)

    def _index(self, header: str) -> int:
        if header not in self.headers:
            raise ValueError(f"no column {header!r}: the table has {self.headers}")
        return self.headers.index(header)

    def __str__(self) -> str:
        cells = [self.headers] + [[_fmt(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.headers))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.caption] if self.caption else []) + lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
                       + "</tr>" for row in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<div class="evakit-table-wrap"><table class="evakit-table">{caption}'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")

    def __repr__(self) -> str:
        return str(self)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "×".join(_fmt(x) for x in v)
    return "" if v is None else str(v)
