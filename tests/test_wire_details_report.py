"""The wire comparison's machine-readable report (tests/wire_details.py)."""

from tests.wire_details import summary


def _answer(test: str, detail: str, status: int = 400) -> dict[str, object]:
    return {"file": "f.yaml", "test": test, "method": "PUT", "status": status,
            "detail": [detail]}


def test_summary_counts_and_classifies_differences() -> None:
    reference = [
        _answer("same", "Bad thing."),
        _answer("leak", "(sqlite3.IntegrityError) UNIQUE failed [SQL: INSERT ...]"),
        _answer("text", "One text."),
    ]
    project = [_answer("same", "Bad thing."), _answer("leak", "Conflict."),
               _answer("text", "Another text.")]
    report = summary(reference, project)
    assert (report["compared"], report["differ"], report["unexpected"]) == (3, 2, 1)
    kinds = {item["test"]: item["kind"] for item in report["differences"]}
    assert kinds == {"leak": "intended: reference leaks SQL", "text": "unexpected"}
