from pydantic import BaseModel, ValidationError, model_validator

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.schema import validation_error


class _Span(BaseModel):
    start: float
    end: float

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError("end: must not come before start")
        return self


def _error(data) -> ConfigError:
    try:
        _Span.model_validate(data)
    except ValidationError as err:
        return validation_error("span.yaml", err)
    raise AssertionError("expected a validation error")


def test_one_field_error_names_the_field():
    err = _error({"start": "soon", "end": 1})
    assert err.field == "start"
    assert str(err).startswith("span.yaml: field 'start': ")
    assert "'soon'" in str(err)


def test_whole_model_error_keeps_its_whole_message():
    err = _error({"start": 2, "end": 1})
    assert err.field is None
    assert "end: must not come before start" in str(err)


def test_several_errors_each_named():
    err = _error({"end": "x"})
    assert err.field == "start"
    assert "start: required field is missing" in str(err)
    assert "end: " in str(err)
