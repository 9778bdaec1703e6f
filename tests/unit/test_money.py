import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.errors import ValidationError
from core.domain.money import MAX_POSTING_FEN, parse_yuan, require_fen, yuan


@pytest.mark.parametrize("bad", [1.0, 0.5, "100", None, True, False, [1], 10**12])
def test_require_fen_refuses_what_is_not_a_plain_integer(bad):
    with pytest.raises(ValidationError) as e:
        require_fen(bad)
    assert e.value.status == 400
    assert e.value.code in {"amount_not_integer", "amount_too_large"}


@pytest.mark.parametrize("bad", [0, -1, -100])
def test_require_fen_refuses_zero_and_negative(bad):
    with pytest.raises(ValidationError) as e:
        require_fen(bad)
    assert e.value.code == "amount_not_positive"


def test_require_fen_accepts_the_limit():
    assert require_fen(MAX_POSTING_FEN) == MAX_POSTING_FEN


@pytest.mark.parametrize(
    "fen,text", [(0, "0.00"), (5, "0.05"), (-5, "-0.05"), (1234, "12.34"), (-100000, "-1000.00")]
)
def test_yuan_formats_two_decimals(fen, text):
    assert yuan(fen) == text


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_yuan_round_trips_exactly(fen):
    assert parse_yuan(yuan(fen)) == fen


@pytest.mark.parametrize("bad", ["1.005", "abc", "", "NaN", "Infinity"])
def test_parse_yuan_refuses_sub_fen_and_garbage(bad):
    with pytest.raises(ValidationError):
        parse_yuan(bad)
