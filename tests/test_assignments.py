"""Assignment input from forms and the API: odd values are refused with a reason, never a crash."""
import pytest

from phoneapp.services.assignments import clean_assignment_fields
from phoneapp.services.errors import ValidationError


@pytest.mark.parametrize("client_id", ["²", "١٢", "12345678901", str(2**31), "-1", "1.0", " 1", [1], 1.5])
def test_odd_client_ids_are_refused_with_a_reason(app, client_id):
    with pytest.raises(ValidationError) as refused:
        clean_assignment_fields({"client_id": client_id})
    assert refused.value.details == {"client_id": "must be a client id or null"}


def test_a_client_id_of_a_missing_client_names_it(app):
    with pytest.raises(ValidationError) as refused:
        clean_assignment_fields({"client_id": "42"})
    assert refused.value.details == {"client_id": "no client with id 42"}


@pytest.mark.parametrize("value, expected", [("", None), (None, None), ("(415) 555-0166", "+14155550166")])
def test_forward_target_is_normalised_or_cleared(app, value, expected):
    assert clean_assignment_fields({"forward_to_number": value}) == {"forward_to_number": expected}
