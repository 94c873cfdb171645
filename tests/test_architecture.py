"""docs/architecture.md cannot drift from the code: its state table holds every message
status, every move of `MOVES` and every function that makes one, and every module, name,
path and thread it cites exists. The code is read, never imported (importing
stickerq.worker.celery_app configures the app)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from stickerq.campaign_status import Move
from stickerq.message_status import MOVES, MessageMove
from stickerq.states import CampaignStatus, MessageStatus

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
# import name -> folder: pyproject's package-dir
PACKAGE_DIRS = {"producer": "producer", "worker": "worker", "migrations": "migrations"}
CODE = ("stickerq", "producer", "worker")
STATE_TABLE_HEADER = ["from", "to", "move", "by", "when"]
FIX = "; bring docs/architecture.md up to date with the code"


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The page without its fenced blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def fenced(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def section(title: str) -> str:
    """The text of one `## title` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page(), re.M | re.S)
    assert match, f"docs/architecture.md has no section '## {title}'"
    return match.group(1)


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def table(header: list[str]) -> list[dict[str, str]]:
    """The rows of the page's markdown table with this header, as {column: cell}."""
    lines = page().splitlines()
    for index, line in enumerate(lines):
        if _cells(line) == header:
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                assert len(cells) == len(header), f"a row of the {header} table: {row}"
                rows.append(dict(zip(header, cells, strict=True)))
            return rows
    raise AssertionError(f"docs/architecture.md has no table | {' | '.join(header)} |")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def state_rows() -> list[dict[str, str]]:
    return table(STATE_TABLE_HEADER)


def statuses_in(cell: str) -> list[str]:
    return backticked(cell)


def movers(cell: str) -> list[str]:
    return [name for name in backticked(cell) if _is_dotted_code_name(name)]


# Reading the code


def _is_dotted_code_name(name: str) -> bool:
    return re.fullmatch(r"(stickerq|producer|worker)(\.\w+)+", name) is not None


def _normalised(name: str) -> str:
    """`stickerq.worker.claims.claim` -> `worker.claims.claim`."""
    parts = name.split(".")
    if parts[0] == "stickerq" and len(parts) > 1 and parts[1] in PACKAGE_DIRS:
        parts = parts[1:]
    return ".".join(parts)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _defined(body: list[ast.stmt], name: str) -> ast.AST | None:
    """The def, class or assignment of `name` directly in `body`."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return node
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return node
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            return node
    return None


def resolve(name: str) -> ast.AST | Path | None:
    """What a dotted name of the page is in the code (a module's folder or file, or the def,
    class or assignment it names), without importing it; None if it does not exist."""
    parts = _normalised(name).split(".")
    folder = PACKAGE_DIRS.get(parts[0], parts[0])
    path = ROOT / folder
    rest = parts[1:]
    while rest and (path / rest[0]).is_dir():
        path, rest = path / rest[0], rest[1:]
    if not rest:
        return path if (path / "__init__.py").exists() else None
    if not (path / f"{rest[0]}.py").exists():
        return None
    path = path / f"{rest[0]}.py"
    node: ast.AST = _tree(path)
    for attribute in rest[1:]:
        body = getattr(node, "body", None)
        found = _defined(body, attribute) if isinstance(body, list) else None
        if found is None:
            return None
        node = found
    return node if rest[1:] else path


def code_files() -> Iterator[tuple[str, Path]]:
    """(module as the page names it, path) of every module of stickerq/, producer/, worker/."""
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def status_writers() -> set[str]:
    """Every function that sets a message's status to a MessageStatus: a `status=` keyword
    (an UPDATE's values, a MessageResult) or an assignment to `.status`."""
    found: set[str] = set()
    for module, path in code_files():
        _scan(_tree(path), module, found)
    return found


def _scan(node: ast.AST, qualname: str, found: set[str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            _scan(child, f"{qualname}.{child.name}", found)
            continue
        if _sets_a_status(child) and not isinstance(node, ast.Module | ast.ClassDef):
            found.add(qualname)
        _scan(child, qualname, found)


def _sets_a_status(node: ast.AST) -> bool:
    if isinstance(node, ast.keyword):
        return node.arg == "status" and _names_message_status(node.value)
    if isinstance(node, ast.Assign):
        for target in node.targets:
            targets = target.elts if isinstance(target, ast.Tuple) else [target]
            values = (
                node.value.elts
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                else [node.value] * len(targets)
            )
            for one, value in zip(targets, values, strict=True):
                if (
                    isinstance(one, ast.Attribute)
                    and one.attr == "status"
                    and _names_message_status(value)
                ):
                    return True
    return False


def _names_message_status(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "MessageStatus"
        for n in ast.walk(node)
    )


def move_makers() -> set[tuple[str, str]]:
    """(function, move) for every function that names a `MessageMove.<move>` in its body."""
    found: set[tuple[str, str]] = set()
    for module, path in code_files():
        _scan_moves(_tree(path), module, found)
    return found


def _scan_moves(
    node: ast.AST, qualname: str, found: set[tuple[str, str]], in_function: bool = False
) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inside = in_function or not isinstance(child, ast.ClassDef)
            _scan_moves(child, f"{qualname}.{child.name}", found, inside)
            continue
        if (
            in_function
            and isinstance(child, ast.Attribute)
            and isinstance(child.value, ast.Name)
            and child.value.id == "MessageMove"
        ):
            found.add((qualname, child.attr))
        _scan_moves(child, qualname, found, in_function)


def row_move(row: dict[str, str]) -> MessageMove | None:
    """The row's `MessageMove`, or None for an insert ("—")."""
    if row["move"] == "—":
        return None
    (name,) = backticked(row["move"])
    assert name in MessageMove.__members__, f"{name} is no MessageMove ({row}){FIX}"
    return MessageMove[name]


# The state machine


def test_every_message_status_is_in_the_state_table() -> None:
    named = {status for row in state_rows() for status in statuses_in(row["from"] + row["to"])}
    missing = {status.value for status in MessageStatus} - named
    assert not missing, f"statuses no move of the state table names: {sorted(missing)}{FIX}"


def test_the_state_table_names_only_real_statuses() -> None:
    real = {status.value for status in MessageStatus}
    for row in state_rows():
        for cell in (row["from"], row["to"]):
            assert cell == "—" or statuses_in(cell), f"an empty cell in {row}"
            unknown = set(statuses_in(cell)) - real
            assert not unknown, f"{sorted(unknown)} are not MessageStatus values ({row}){FIX}"


def test_every_move_names_a_function_of_the_code_that_exists() -> None:
    """The first name of a row's "by" is the function that writes the status; the others
    (who calls it, what decides the status) exist too."""
    for row in state_rows():
        named = movers(row["by"])
        assert named, f"a move names no module.function: {row}"
        mover, *others = named
        assert isinstance(resolve(mover), ast.FunctionDef | ast.AsyncFunctionDef), (
            f"{mover}, named as moving {row['from']} -> {row['to']}, is no function of the "
            f"code{FIX}"
        )
        for name in others:
            assert resolve(name) is not None, f"{name} ({row}) is not in the code{FIX}"


def test_every_function_that_writes_a_message_status_is_in_the_state_table() -> None:
    named = {_normalised(name) for row in state_rows() for name in movers(row["by"])}
    unnamed = status_writers() - named
    assert not unnamed, (
        f"these functions set a message's status but the state table does not name them: "
        f"{sorted(unnamed)}; add their moves{FIX}"
    )


def test_the_status_writers_are_found() -> None:
    """The scans above find what they are meant to (a scan that finds nothing proves nothing)."""
    assert {"worker.sending.BatchSender._result", "worker.sending.BatchSender._expired"} <= (
        status_writers()
    )
    makers = move_makers()
    assert ("worker.claims.claim", "CLAIM") in makers
    assert ("producer.callback_updates._read", "READ") in makers


def test_each_row_is_a_move_of_the_table_made_by_its_function() -> None:
    """A row's statuses are among its move's starts and ends in `MOVES`, and the first name
    in "by" names that move in its body."""
    makers = move_makers()
    for row in state_rows():
        move = row_move(row)
        if move is None:
            assert row["from"] == "—", f"a move with no MessageMove: {row}{FIX}"
            continue
        starts, ends = MOVES[move]
        assert set(statuses_in(row["from"])) <= starts, f"{row} starts outside {move}{FIX}"
        assert set(statuses_in(row["to"])) <= ends, f"{row} ends outside {move}{FIX}"
        mover = _normalised(movers(row["by"])[0])
        assert (mover, move.name) in makers, (
            f"{mover} does not make {move.name} (it names no MessageMove.{move.name}){FIX}"
        )


def test_every_move_of_the_table_and_of_the_code_is_on_the_page() -> None:
    rows = [(row_move(row), row) for row in state_rows()]
    for move, (starts, ends) in MOVES.items():
        shown = [row for named, row in rows if named is move]
        assert shown, f"MessageMove.{move.name} has no row{FIX}"
        assert starts == {s for row in shown for s in statuses_in(row["from"])}, (
            f"the rows of {move.name} do not start from every status MOVES gives it{FIX}"
        )
        assert ends == {s for row in shown for s in statuses_in(row["to"])}, (
            f"the rows of {move.name} do not end in every status MOVES gives it{FIX}"
        )
    for function, move in move_makers():
        named = any(
            row_move(row) is MessageMove[move]
            and function in {_normalised(name) for name in movers(row["by"])}
            for row in state_rows()
        )
        assert named, f"{function} makes {move}, but no row of {move} names it{FIX}"


# Campaigns, layers, modules, names


def test_every_campaign_move_and_status_is_on_the_page() -> None:
    text = section("Campaign states")
    for move in Move:
        assert f"`Move.{move.name}`" in text, f"Move.{move.name} is not in Campaign states{FIX}"
    for name in re.findall(r"`Move\.(\w+)`", page()):
        assert name in Move.__members__, f"Move.{name} is no campaign move{FIX}"
    for status in CampaignStatus:
        assert re.search(rf"\b{status.value}\b", text), f"campaign status {status} missing{FIX}"


def test_the_layer_list_names_every_module_of_stickerq() -> None:
    text = section("The layers")
    for path in sorted((ROOT / "stickerq").iterdir()):
        if path.name in ("__init__.py", "__main__.py", "__pycache__"):
            continue
        if path.is_dir():
            assert f"stickerq/{path.name}/" in text, f"stickerq/{path.name}/ is in no layer{FIX}"
        elif path.suffix == ".py":
            assert re.search(rf"\b{path.name}\b", text), f"stickerq/{path.name} is in no layer{FIX}"
    for folder in ("producer/", "worker/", "migrations/"):
        assert folder in text


def test_the_tables_section_names_every_table() -> None:
    text = section("The tables")
    models = _tree(ROOT / "stickerq" / "models.py")
    names = {
        node.value.value
        for node in ast.walk(models)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    }
    assert names, "no __tablename__ found in stickerq/models.py"
    listed = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert listed == names, (
        f"tables: in the code {sorted(names)}, on the page {sorted(listed)}{FIX}"
    )


def test_every_worker_module_is_named() -> None:
    text = page()
    for path in sorted((ROOT / "worker").glob("*.py")):
        if path.stem == "__init__":
            continue
        assert re.search(rf"worker[./]{path.stem}\b", text), (
            f"worker/{path.name} is named nowhere on the page: say where it sits{FIX}"
        )


def test_every_name_and_path_the_page_cites_exists() -> None:
    for name in backticked(prose(page())):
        if _is_dotted_code_name(name):
            assert resolve(name) is not None, f"`{name}` is not in the code{FIX}"
            continue
        path = re.fullmatch(
            r"((?:stickerq|producer|worker|migrations|tests|docs|scripts|bench)(?:/[\w.-]+)*/?"
            r"|[\w-]+\.(?:toml|md))(?:::(\w+))?",
            name,
        )
        if path is None:
            continue
        file, test = path.groups()
        assert (ROOT / file).exists(), f"`{file}` does not exist{FIX}"
        if test is not None:
            assert _defined(_tree(ROOT / file).body, test), f"`{name}` does not exist{FIX}"


def test_every_name_in_the_diagrams_exists() -> None:
    """`claims.release`, `leaving.MarkWriter.write`: a module of the code and a name defined
    in it (at any depth: methods too)."""
    stems: dict[str, list[Path]] = {}
    for _, path in code_files():
        stems.setdefault(path.stem, []).append(path)
    for block in fenced(page()):
        for module, names in re.findall(r"\b([a-z_]+)((?:\.[A-Za-z_]\w*)+)", block):
            if module not in stems or names == ".py":  # a file: the layer test's
                continue
            wanted = names.strip(".").split(".")
            assert any(_defines_all(path, wanted) for path in stems[module]), (
                f"`{module}.{'.'.join(wanted)}` in a diagram is not in the code{FIX}"
            )


def _defines_all(path: Path, names: list[str]) -> bool:
    defined = {
        node.name
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    return set(names) <= defined


def test_every_thread_the_domain_names_is_on_the_page() -> None:
    text = page()
    for folder in ("producer", "worker"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for thread in re.findall(r"(?:thread_name_prefix|name)=\"(stickerq-[\w-]+)\"", source):
                assert f"`{thread}`" in text, (
                    f"thread {thread} ({path.name}) is not on the page{FIX}"
                )


def test_the_code_cites_only_files_of_the_repository_and_sections_of_this_page() -> None:
    """A comment that cites a document cites one in the tree (by its path from the top of the
    repository, or by its name in docs/), and `docs/architecture.md, "Section"` names a
    heading of this page."""
    headings = set(re.findall(r"^#{2,3} (.+)$", page(), re.M))
    for _, path in code_files():
        source = path.read_text(encoding="utf-8")
        for cited in re.findall(r"(?<![\w/.-])([\w/-]+\.md)\b", source):
            assert (ROOT / cited).exists() or (ROOT / "docs" / cited).exists(), (
                f"{path.relative_to(ROOT)} cites {cited}, which is not in the repository"
            )
        for sections in re.findall(r'docs/architecture\.md, ((?:"[^"]+"(?: and |, )?)+)', source):
            for heading in re.findall(r'"([^"]+)"', sections):
                assert heading in headings, (
                    f"{path.relative_to(ROOT)} cites the section {heading!r} of "
                    f"docs/architecture.md, which has no such heading"
                )
