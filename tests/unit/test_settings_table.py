"""docs/operating.md's settings table against what docqueue really reads, and the defaults it really uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "docqueue" / "settings.py"
TABLE = ROOT / "docs" / "operating.md"
#: Where settings outside settings.py are read: process sizing in the Procfile and gunicorn's config, `up`'s home.
ALSO_READ_IN = [ROOT / "Procfile", ROOT / "gunicorn.conf.py", *sorted((ROOT / "docqueue" / "local").glob("*.py"))]


def table_rows() -> dict[str, str]:
    """Each variable the table names, with the default cell of its row (split where a row names several)."""
    section = TABLE.read_text().split("## Settings", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) if len(names) > 1 else [cells[1]]
        for index, name in enumerate(names):
            rows[name] = defaults[index] if index < len(defaults) else cells[1]
    return rows


def settings_read() -> dict[str, object]:
    """Every environment variable settings.py reads, with its default where the code states one as a constant."""
    read = {}
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        name = node.args[0].value
        # Every reader (`read_int`, `os.environ.get`, ...) takes the variable's name first.
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
            continue
        default = None
        if len(node.args) > 1 and function != "read_choice":  # its second argument: the allowed values, not a default
            try:
                default = eval(compile(ast.Expression(node.args[1]), "<default>", "eval"), {"__builtins__": {}})
            except NameError:
                default = None  # computed at run time (the number of CPUs)
        read[name] = default
    return read


def test_every_setting_read_has_a_row_and_every_row_is_read():
    rows, read = table_rows(), settings_read()
    assert sorted(set(read) - set(rows)) == [], "settings.py reads these; add them to docs/operating.md"
    elsewhere = "\n".join(path.read_text() for path in ALSO_READ_IN)
    unread = [name for name in rows if name not in read and name not in elsewhere]
    assert unread == [], "docs/operating.md documents settings nothing reads"


def test_each_rows_default_is_the_codes():
    rows = table_rows()
    wrong = {}
    for name, default in settings_read().items():
        if default is None or default == "":
            continue
        cell = rows[name].replace("`", "").replace(",", "")
        expected = str(default)
        if not re.match(rf"{re.escape(expected)}\b", cell):
            wrong[name] = (rows[name], expected)
    assert wrong == {}, "docs/operating.md's default differs from settings.py's (table, code)"
