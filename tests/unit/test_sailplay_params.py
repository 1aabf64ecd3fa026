"""The loyalty face's parameter reader (SPEC §3): one value per name, and the errors it raises."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import UploadFile

from tessera import errors
from tessera.sailplay import FALSE_WORDS, TRUE_WORDS, Params, error_response


def params(**values: Any) -> Params:
    return Params(values, {})


# --- get / require -----------------------------------------------------------------------------------


def test_get_trims_and_treats_blank_as_missing() -> None:
    given_ = params(name="  Summer  ", blank="   ", empty="", none=None)
    assert given_.get("name") == "Summer"
    assert given_.get("blank") is None
    assert given_.get("empty") is None
    assert given_.get("none") is None
    assert given_.get("absent") is None


def test_get_turns_json_values_into_text() -> None:
    # A JSON body may carry numbers, booleans and nested values where forms carry strings.
    given_ = params(number=12345, flag=True, cart={"1": {"sku": "A1"}}, codes=["A", "B"])
    assert given_.get("number") == "12345"
    assert given_.get("flag") == "True"
    assert given_.get("cart") == '{"1": {"sku": "A1"}}'
    assert given_.get("codes") == '["A", "B"]'


def test_require_returns_the_trimmed_value() -> None:
    assert params(number=" ABC-1 ").require("number") == "ABC-1"


@pytest.mark.parametrize("values", [{}, {"number": ""}, {"number": "   "}, {"number": None}])
def test_require_missing_field_message_is_the_seeds(values: dict[str, Any]) -> None:
    with pytest.raises(errors.MissingField) as caught:
        Params(values, {}).require("number")
    error = caught.value
    assert error.field == "number"
    assert error.body() == {
        "status": "error",
        "status_code": -1000,
        "message": "Provide required {'field': 'number'}",
    }


def test_missing_field_names_whichever_field_is_missing() -> None:
    with pytest.raises(errors.MissingField, match=r"^Provide required \{'field': 'group_name'\}$"):
        params().require("group_name")


# --- integer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("42", 42), (" 7 ", 7), ("-3", -3), ("0", 0), (15, 15)])
def test_integer(raw: Any, expected: int) -> None:
    assert params(n=raw).integer("n") == expected
    assert params(n=raw).require_integer("n") == expected


def test_integer_absent_is_none() -> None:
    assert params().integer("n") is None
    assert params(n=" ").integer("n") is None


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "12a", "0x10"])
def test_integer_refuses_what_is_not_an_integer(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        params(target_dep_id=raw).integer("target_dep_id")
    assert caught.value.field == "target_dep_id"
    assert caught.value.status_code == -1000
    assert caught.value.text == "Invalid value of target_dep_id: not an integer"


def test_require_integer_when_missing() -> None:
    with pytest.raises(errors.MissingField) as caught:
        params().require_integer("group_id")
    assert caught.value.text == "Provide required {'field': 'group_id'}"


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_integer_reads_back_any_integer_written_as_text(number: int) -> None:
    assert params(n=f" {number} ").integer("n") == number


# --- boolean -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [*sorted(TRUE_WORDS), "TRUE", "Yes", " on ", True, 1])
def test_boolean_true(raw: Any) -> None:
    assert params(flag=raw).boolean("flag") is True


@pytest.mark.parametrize("raw", [*sorted(FALSE_WORDS), "FALSE", "No", " off ", False, 0])
def test_boolean_false(raw: Any) -> None:
    assert params(flag=raw).boolean("flag") is False


def test_boolean_absent_is_none() -> None:
    assert params().boolean("flag") is None
    assert params(flag="").boolean("flag") is None


@pytest.mark.parametrize("raw", ["2", "maybe", "tru", "-1", "enabled"])
def test_boolean_refuses_other_words(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        params(enabled=raw).boolean("enabled")
    assert caught.value.text == "Invalid value of enabled: not a boolean"
    assert caught.value.status_code == -1000


def test_true_and_false_words_do_not_overlap() -> None:
    assert not TRUE_WORDS & FALSE_WORDS


# --- json --------------------------------------------------------------------------------------------


def test_json_parses_a_string_field() -> None:
    cart = '{"1": {"sku": "A1", "price": 1000, "quantity": 1}}'
    assert params(cart=cart).json("cart") == {"1": {"sku": "A1", "price": 1000, "quantity": 1}}
    assert params(promocodes=' ["SUMMER-1", "X"] ').json("promocodes") == ["SUMMER-1", "X"]


def test_json_passes_already_parsed_values_through() -> None:
    cart = {"1": {"sku": "A1"}}
    assert params(cart=cart).json("cart") is cart
    codes = ["A"]
    assert params(promocodes=codes).json("promocodes") is codes


@pytest.mark.parametrize("values", [{}, {"cart": ""}, {"cart": "  "}, {"cart": None}])
def test_json_absent_or_blank_is_none(values: dict[str, Any]) -> None:
    assert Params(values, {}).json("cart") is None


@pytest.mark.parametrize("raw", ["{", "not json", "{'1': 2}", '["a",]'])
def test_json_refuses_invalid_json(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        params(cart=raw).json("cart")
    assert caught.value.text == "Invalid value of cart: not valid JSON"
    assert caught.value.field == "cart"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(JSON_VALUES, max_size=3) | st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3))
def test_json_of_a_value_written_by_get_reads_back(value: list[Any] | dict[str, Any]) -> None:
    """A JSON body's nested value, read as text by `get`, parses back to itself with `json`."""
    text = params(v=value).get("v")
    assert text is not None
    assert params(v=text).json("v") == value


# --- files and errors --------------------------------------------------------------------------------


def test_file_is_found_by_field_name() -> None:
    upload = UploadFile(io.BytesIO(b"A1\n"), filename="codes.txt")
    given_ = Params({"name": "Summer"}, {"file": upload})
    assert given_.file("file") is upload
    assert given_.file("other") is None
    assert given_.get("file") is None


def test_business_errors_are_http_200_and_only_limits_and_unknown_paths_are_not() -> None:
    assert error_response(errors.MissingField("number")).status_code == 200
    assert error_response(errors.PermissionDenied()).status_code == 200
    assert error_response(errors.RateLimited()).status_code == 429
    assert error_response(errors.UnknownPath()).status_code == 404
