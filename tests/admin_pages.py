"""What an admin page shows in a field, as a person reads it: the text of each list cell,
inline cell or read-only value of that field, whitespace collapsed."""

from html.parser import HTMLParser


class _Fields(HTMLParser):
    """Texts of one field's cells (`td`/`th` of class field-<name>) and read-only values
    (the `div.readonly` of the form row or field box of that field)."""

    def __init__(self, name: str):
        super().__init__()
        self.css = f"field-{name}"
        self.texts: list[str] = []
        self._stack: list[set[str]] = []  # the classes of each open element
        self._capture: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag in ("br", "img", "input", "link", "meta", "hr"):
            return
        self._stack.append(classes)
        if self._capture is not None:
            self._depth += 1
        elif self._starts_a_value(tag, classes):
            self._capture, self._depth = [], 1

    def handle_endtag(self, tag):
        if tag in ("br", "img", "input", "link", "meta", "hr") or not self._stack:
            return
        self._stack.pop()
        if self._capture is not None:
            self._depth -= 1
            if self._depth == 0:
                self.texts.append(" ".join("".join(self._capture).split()))
                self._capture = None

    def handle_data(self, data):
        if self._capture is not None:
            self._capture.append(data)

    def _starts_a_value(self, tag: str, classes: set[str]) -> bool:
        if tag in ("td", "th"):
            return self.css in classes
        return tag == "div" and "readonly" in classes and self._owner_is_field()

    def _owner_is_field(self) -> bool:
        """The nearest element naming a field (a form row, or a field box in a row of
        several) names this one."""
        for classes in reversed(self._stack[:-1]):
            named = {css for css in classes if css.startswith("field-")}
            if len(named) == 1:
                return self.css in named
        return False


def shown(response, name: str) -> list[str]:
    """The texts the page shows for the field (or admin column) `name`, in page order."""
    parser = _Fields(name)
    parser.feed(response.content.decode())
    return parser.texts


class _Rows(HTMLParser):
    """The text of each cell of each row of the table with one id."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.rows, self._inside, self._cell = table_id, [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self._inside and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._inside = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(response, table_id: str) -> list[list[str]]:
    """The rows (header, body, footer) of the page's table with this id, as text."""
    parser = _Rows(table_id)
    parser.feed(response.content.decode())
    return parser.rows
