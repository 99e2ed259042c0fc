"""Runs last: every response the suite saw must match Twilio's OpenAPI specs."""

import pytest

import spec_check


def test_every_response_matches_the_spec(recorded):
    if not spec_check.specs_available():
        pytest.skip(f"Twilio's OpenAPI specs are not in {spec_check.SPECS_DIR}; set TWILIO_SPECS_DIR")
    assert recorded, "the suite recorded no responses"
    index = spec_check.SpecIndex()
    problems = [p for p in (index.validate(*r) for r in recorded) if p]
    assert not problems, "\n".join(sorted(set(problems)))
