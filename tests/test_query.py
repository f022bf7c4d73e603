"""Unit tests of the shared query-value parsers (app/query.py)."""

import pytest

from app.exceptions import InvalidInput
from app.query import (
    AggregateFilter,
    TraitFilter,
    check_allowed_keys,
    check_strict_uuid,
    is_lenient_uuid,
    is_strict_uuid,
    normalize_uuid,
    parse_in_tree,
    parse_member_of,
    parse_required,
    parse_resources,
)

U1 = "282d469e-29e2-4a8a-8f2e-31b3202b696a"
U2 = "99652f11-9f77-46b9-80b7-4b1989be9f8c"
LATEST = (1, 39)


def message(exc: pytest.ExceptionInfo[InvalidInput]) -> str:
    return exc.value.message


# -- UUIDs ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "value",
    [
        U1, U1.upper(), U1.replace("-", ""), f"{{{U1}}}", f"urn:uuid:{U1}",
        "282d-469e29e24a8a8f2e31b3202b696a",
    ],
)
def test_lenient_uuid_accepts(value: str) -> None:
    assert is_lenient_uuid(value)
    assert normalize_uuid(value) == U1


@pytest.mark.parametrize("value", ["", "x", f" {U1}", U1[:-1], U1.replace("-", "_"), f"!{U1}"])
def test_lenient_uuid_rejects(value: str) -> None:
    assert not is_lenient_uuid(value)
    with pytest.raises(ValueError, match="is not a UUID"):
        normalize_uuid(value)


def test_strict_uuid() -> None:
    assert is_strict_uuid(U1)
    assert is_strict_uuid(U1.upper())
    assert not is_strict_uuid(U1.replace("-", ""))
    assert not is_strict_uuid(f"urn:uuid:{U1}")
    assert not is_strict_uuid("")
    with pytest.raises(InvalidInput) as exc:
        check_strict_uuid("in_tree", "x")
    assert message(exc).startswith("Invalid query string parameters: 'x' is not a 'uuid'")
    assert "['in_tree']" in message(exc)


def test_check_allowed_keys() -> None:
    check_allowed_keys(["name", "uuid"], ["name", "uuid", "resources"])
    with pytest.raises(InvalidInput) as exc:
        check_allowed_keys(["foo"], ["name"])
    assert message(exc) == (
        "Invalid query string parameters: Additional properties are not allowed "
        "('foo' was unexpected)"
    )
    with pytest.raises(InvalidInput) as exc:
        check_allowed_keys(["foo", "bar", "name"], ["name"])
    assert "('bar', 'foo' were unexpected)" in message(exc)


# -- resources -----------------------------------------------------------------

def test_parse_resources_ok() -> None:
    assert parse_resources("VCPU:2,MEMORY_MB:1024") == {"VCPU": 2, "MEMORY_MB": 1024}
    # Last amount of a repeated class wins; int() leniency as the reference.
    assert parse_resources("VCPU:1,VCPU:3") == {"VCPU": 3}
    assert parse_resources("VCPU: 4") == {"VCPU": 4}
    assert parse_resources("VCPU:+05") == {"VCPU": 5}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "Got: empty string."),
        ("   ", "Got: empty string."),
        ("VCPU", "Badly formed resources parameter. Expected resources query string "
                 "parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: VCPU."),
        ("VCPU:1:2", "Got: VCPU:1:2."),
        ("VCPU:1,", "Got: ."),
        ("VCPU:fred", "Requested resource VCPU expected positive integer amount. Got: fred."),
        ("VCPU:1.5", "Requested resource VCPU expected positive integer amount. Got: 1.5."),
        ("VCPU:-2", "Requested resource VCPU requires amount >= 1. Got: -2."),
        ("VCPU:0", "Requested resource VCPU requires amount >= 1. Got: 0."),
    ],
)
def test_parse_resources_errors(value: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_resources(value)
    assert expected in message(exc)


# -- required --------------------------------------------------------------------

def test_parse_required_plain_and_forbidden() -> None:
    result = parse_required(["A, !B,!!C"], LATEST)
    assert result.required == [frozenset({"A"})]
    assert result.forbidden == {"B", "C"}
    assert result.names == {"A", "B", "C"}
    assert result


def test_parse_required_any_and_repetition_at_139() -> None:
    result = parse_required(["in:A, B", "C", "!D"], LATEST)
    assert result == TraitFilter([frozenset({"A", "B"}), frozenset({"C"})], {"D"})


def test_parse_required_below_139_only_last_counts() -> None:
    result = parse_required(["in:A", "B"], (1, 38))
    assert result.required == [frozenset({"B"})]
    with pytest.raises(InvalidInput) as exc:
        parse_required(["B", "in:A"], (1, 38))
    assert message(exc) == (
        "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only "
        "supported since microversion 1.39. Got: in:A"
    )


def test_parse_required_none() -> None:
    assert not parse_required([], LATEST)


@pytest.mark.parametrize(
    ("values", "version", "expected"),
    [
        ([""], LATEST, "Expected 'required' parameter value of the form: "
                       "HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: "),
        (["A,,B"], (1, 22), "HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: A,,B"),
        (["!"], LATEST, "Got an empty trait in: !"),
        (["A,"], (1, 18), "form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: A,"),
        (["A,!B"], (1, 21), "form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: A,!B"),
        (["in:"], LATEST, "form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: in:"),
        (["in:A,!B"], LATEST, "The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support "
                              "forbidden traits. Got: in:A,!B"),
        (["in:!A", ""], LATEST, "does not support forbidden traits"),
        (["", "in:!A"], LATEST, "Got an empty trait in: "),
    ],
)
def test_parse_required_errors(values: list[str], version: tuple[int, int], expected: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_required(values, version)
    assert message(exc).startswith("Invalid query string parameters: ")
    assert expected in message(exc)


# -- member_of ---------------------------------------------------------------------

def test_parse_member_of_forms() -> None:
    result = parse_member_of([U1, f"in:{U1},{U2}", f"!{U2}", f"!in:{U1},{U2}"], LATEST)
    assert result == AggregateFilter(
        [frozenset({U1}), frozenset({U1, U2})], {U1, U2}
    )
    assert not parse_member_of([], LATEST)


def test_parse_member_of_keeps_strings_as_given() -> None:
    upper = U1.upper()
    assert parse_member_of([upper], (1, 3)).required == [frozenset({upper})]


@pytest.mark.parametrize(
    ("values", "version", "expected"),
    [
        ([""], LATEST, "Invalid query string parameters: Expected 'member_of' parameter to "
                       "contain valid UUID(s). Got: "),
        (["x"], LATEST, "Got: x"),
        ([f"in:{U1},x"], LATEST, "Got: x"),
        ([f"in:{U1},!{U2}"], LATEST, f"Got: !{U2}"),
        ([f"!!{U1}"], LATEST, f"Got: !{U1}"),
        ([f"{U1},{U2}"], LATEST, "Multiple values for 'member_of' must be prefixed with the "
                                 "'in:' or '!in:' keyword using the valid microversion. "
                                 f"Got: {U1},{U2}"),
        ([U1, U1], (1, 23), "Multiple member_of parameters are not supported"),
        ([f"!{U1}"], (1, 31), "Forbidden member_of parameters are not supported in the "
                              "specified microversion"),
        ([f"!in:{U1}"], (1, 31), "Forbidden member_of parameters are not supported"),
        (["!x"], (1, 31), "valid UUID(s). Got: x"),
        ([U1, "x"], (1, 31), "Got: x"),
    ],
)
def test_parse_member_of_errors(
    values: list[str], version: tuple[int, int], expected: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_member_of(values, version)
    assert expected in message(exc)


def test_parse_member_of_suffixed_key_texts() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_member_of([U1, U2], (1, 23), key="member_of1")
    assert message(exc) == "Multiple member_of1 parameters are not supported"


def test_parse_in_tree() -> None:
    assert parse_in_tree(f" {U1} ") == U1
    with pytest.raises(InvalidInput) as exc:
        parse_in_tree("nope")
    assert message(exc) == (
        "Invalid query string parameters: Expected 'in_tree' parameter to be a format of "
        "uuid. Got: nope"
    )
