from __future__ import annotations

import json

from agentsms.api.problems import problem, validation_errors
from agentsms.errors import FieldError


def test_validation_error_paths_name_the_field() -> None:
    errors = validation_errors(
        [
            {
                "loc": ("body", "recipients", 3, "Recipient", "to"),
                "msg": "Field required",
                "type": "missing",
            },
            {"loc": ("body", "bogus"), "msg": "Extra inputs", "type": "extra_forbidden"},
            {"loc": ("body", "send_at"), "msg": "Value error, must be ISO", "type": "value_error"},
        ]
    )
    assert [(e.field, e.message) for e in errors] == [
        ("recipients[3].to", "is required"),
        ("bogus", "unknown field"),
        ("send_at", "must be ISO"),
    ]


def test_problem_body_is_rfc9457_with_code_and_errors() -> None:
    response = problem(
        422, "validation_failed", "Validation failed", "to: bad", [FieldError("to", "bad")]
    )
    assert response.status_code == 422
    assert response.media_type == "application/problem+json"
    body = json.loads(bytes(response.body))
    assert body["code"] == "validation_failed"
    assert body["errors"] == [{"field": "to", "message": "bad"}]
    assert body["type"].endswith("/validation_failed")
