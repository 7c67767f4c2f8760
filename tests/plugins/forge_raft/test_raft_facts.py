"""Hand-checked answers about this plugin's own fixtures (Python, JavaScript, Go)."""

from __future__ import annotations

import re

import pytest
from raft_corpus import documents_of, find, synthesize

from forge_core.contracts import CodeUnit, Example
from forge_raft.answers import extract_quotes

STOCK = "python/inventory/stock.py"
REPORT = "python/inventory/report.py"
CART = "javascript/cart.js"
LEDGER = "go/ledger/ledger.go"


@pytest.fixture(scope="module")
def present(units: list[CodeUnit]) -> list[Example]:
    """Examples whose context always holds the oracle."""
    return synthesize(units, oracle_probability=1.0)


@pytest.mark.parametrize(
    ("oracle", "expected"),
    [
        (f"{STOCK}::Stock.restock", "Add ``amount`` units of ``sku``."),
        (f"{STOCK}::Item", "One product on the shelves."),
        (f"{CART}::cartTotal", "Sum the prices of the items in a cart."),
        (f"{LEDGER}::Transfer", "Transfer moves amount between two accounts."),
    ],
)
def test_purpose(present: list[Example], oracle: str, expected: str) -> None:
    """The answer is the documentation's first paragraph, quoted as written."""
    example = find(present, "purpose", oracle)
    assert expected in example.final_answer
    assert any(expected in quote for quote in extract_quotes(example.messages[2].content))


def test_purpose_needs_documentation(present: list[Example]) -> None:
    """Undocumented units get no purpose, docstring or implement question."""
    for kind in ("purpose", "docstring", "implement"):
        assert not [
            e for e in present if e.question_type == kind and e.oracle_id.endswith("::audit")
        ]


@pytest.mark.parametrize(
    ("oracle", "expected"),
    [
        (
            f"{STOCK}::Stock.restock",
            "`Stock.restock` takes `self`, `sku` (`str`), `amount` (`int`, default `1`) and "
            '`reason` (`str`, keyword-only, default `"delivery"`) and returns `int`.',
        ),
        (
            f"{STOCK}::check_amount",
            "`check_amount` takes `amount` (`int`, positional-only) and `limit` (`int`, "
            "keyword-only, default `10_000`) and returns `None`.",
        ),
        (
            f"{STOCK}::audit",
            "`audit` takes `message`, `args` (variadic) and `details` (variadic keyword); "
            "no return type is declared.",
        ),
        (
            f"{STOCK}::price_table",
            '`price_table` takes `items` (`list[Item]`) and `currency` (`str`, default `"EUR"`) '
            "and returns `dict[str, str]`.",
        ),
        (
            f"{CART}::cartTotal",
            "`cartTotal` takes `items` (`Array<{price: number, qty: number}>`) and `discount` "
            "(`number`, default `0`) and returns `number`.",
        ),
        (f"{CART}::Cart.checkout", "`Cart.checkout` takes `coupons` (variadic); no return type"),
        (
            f"{LEDGER}::Transfer",
            "`Transfer` takes `from` (`*Account`), `to` (`*Account`) and `amount` (`int64`) and "
            "returns `moved int64, err error`.",
        ),
        (f"{LEDGER}::(*Account).Withdraw", "takes `amount` (`int64`) and returns `error`."),
    ],
)
def test_parameters(present: list[Example], oracle: str, expected: str) -> None:
    """Every parameter with its type, kind and default, and the declared result."""
    assert expected in find(present, "parameters", oracle).final_answer


def test_parameters_skips_methods_with_nothing_to_tell(present: list[Example]) -> None:
    """`def skus(self) -> list[str]` is asked; a bare `def lines(self)` would not be."""
    assert find(present, "parameters", f"{STOCK}::Stock.skus")
    assert not [
        e
        for e in present
        if e.question_type == "parameters" and e.oracle_id == "javascript/cart.js::Cart.constructor"
    ]


def test_location(present: list[Example]) -> None:
    """Path, line span and the enclosing class."""
    example = find(present, "location", f"{STOCK}::Stock.withdraw")
    assert example.final_answer == (
        f"`Stock.withdraw` is a method of `Stock` defined in `{STOCK}`, lines 39-45."
    )
    assert "def withdraw(self, sku: str, amount: int = 1) -> int:" in extract_quotes(
        example.messages[2].content
    )


@pytest.mark.parametrize(
    ("oracle", "callees"),
    [
        (f"{STOCK}::Stock.restock", ["check_amount", "quantity", "audit"]),
        (f"{STOCK}::total_value", ["quantity"]),
        (f"{REPORT}::refill", ["check_amount", "quantity", "restock"]),
        (f"{REPORT}::summary_line", ["total_value"]),
        (f"{CART}::cartTotal", ["lineTotal", "applyDiscount"]),
        (f"{CART}::Cart.checkout", ["cartTotal"]),
        (f"{LEDGER}::Transfer", ["Withdraw", "Deposit"]),
    ],
)
def test_calls(present: list[Example], oracle: str, callees: list[str]) -> None:
    """The repository code a unit calls, by name, in order of first call."""
    final = find(present, "calls", oracle).final_answer
    assert re.findall(r"`([^`]+)`", final.split(" calls ", 1)[1]) == callees


def test_calls_ignores_common_names_and_strings(present: list[Example]) -> None:
    """`self.counts.get(...)` and `restock()` inside a message are not repository calls."""
    withdraw = find(present, "calls", f"{STOCK}::Stock.withdraw").final_answer
    assert "`restock`" not in withdraw and "`get`" not in withdraw
    assert "`check_amount`" in withdraw and "`quantity`" in withdraw


@pytest.mark.parametrize(
    ("oracle", "callers"),
    [
        (f"{STOCK}::total_value", {("summary_line", REPORT)}),
        (f"{STOCK}::Stock.restock", {("refill", REPORT)}),
        (f"{REPORT}::low_stock", {("Report.lines", REPORT)}),
        (f"{CART}::lineTotal", {("cartTotal", CART)}),
        (f"{CART}::cartTotal", {("Cart.checkout", CART)}),
        (f"{LEDGER}::(*Account).Deposit", {("Transfer", LEDGER)}),
    ],
)
def test_callers(present: list[Example], oracle: str, callers: set[tuple[str, str]]) -> None:
    """The innermost calling units (a method, not its class), each shown in the context."""
    example = find(present, "callers", oracle)
    for name, path in callers:
        assert f"`{name}` in `{path}`" in example.final_answer
        assert any(d.name == name and d.path == path for d in documents_of(example))
    assert "`Report` in" not in example.final_answer


def test_usage_quotes_a_real_call_site(present: list[Example], by_id) -> None:
    """Test code is not asked about, but its calls show how to use the code."""
    example = find(present, "usage", f"{STOCK}::Stock.withdraw")
    assert example.final_answer.endswith('stock.withdraw("apple", 2)')
    assert 'assert stock.withdraw("apple", 2) == 1' in extract_quotes(example.messages[2].content)
    assert "python/tests/test_stock.py::test_withdraw_takes_units_out" in by_id


def test_docstring(present: list[Example], by_id) -> None:
    """The answer is the documentation exactly as the parser stored it; the context lacks it."""
    python = find(present, "docstring", f"{STOCK}::Stock.restock")
    assert python.final_answer == by_id[f"{STOCK}::Stock.restock"].docstring
    shown = next(d for d in documents_of(python) if d.name == "Stock.restock")
    assert "Returns the new quantity" not in shown.body
    assert "check_amount(amount)" in shown.body
    go = find(present, "docstring", f"{LEDGER}::Transfer")
    assert go.final_answer == (
        "// Transfer moves amount between two accounts.\n"
        "// It withdraws first, so a failed transfer changes nothing."
    )


def test_implement(present: list[Example]) -> None:
    """The context shows signature and documentation; the answer is the whole, dedented code."""
    example = find(present, "implement", f"{STOCK}::Stock.withdraw")
    shown = next(d for d in documents_of(example) if d.name == "Stock.withdraw")
    assert shown.body == (
        "def withdraw(self, sku: str, amount: int = 1) -> int:\n"
        '    """Take ``amount`` units of ``sku`` out of stock."""\n'
        "    ..."
    )
    assert example.final_answer.startswith("def withdraw(self, sku: str, amount: int = 1) -> int:")
    assert "\n    self.counts[sku] -= amount\n" in example.final_answer
    go = find(present, "implement", f"{LEDGER}::Transfer")
    shown = next(d for d in documents_of(go) if d.name == "Transfer")
    assert shown.body.endswith(
        "func Transfer(from, to *Account, amount int64) (moved int64, err error) { ... }"
    )
    assert "to.Deposit(amount)" in go.final_answer
