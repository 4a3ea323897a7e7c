"""Schemathesis against a real stack's own `/openapi.json`: every operation, all checks.

The document is built from the parser's field tables, so what it accepts the service
must accept (`positive_data_acceptance`) and what it refuses the service must refuse
(`negative_data_rejection`); no input may give a 500, a 405 must carry `Allow`, and
every answer must match its described schema. Run without a key, with an issued key,
and with the admin token, so the admin routes are exercised past their 401.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

from tests.sandbox_process import sandbox_process
from tests.service_stack import issue_key, service_stack

ADMIN_TOKEN = "schemathesis-admin-token-0123456789"
# Per operation and credential: bounded so the file stays about a minute on 2 cores.
EXAMPLES = 12


# A request too large for the server's limits (413 body, 414 request line) is refused
# before any parser sees it: a rejection like any other 4xx.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 429]
            }
        }
    }
)


@dataclass(frozen=True)
class LiveApi:
    base: str
    key: str


@pytest.fixture(scope="module")
def live_api() -> Iterator[LiveApi]:
    # The connect routes reach "TikTok": the sandbox, never the real one.
    with sandbox_process() as tiktok:
        env = {"SIGNER_ADMIN_TOKEN": ADMIN_TOKEN, **tiktok.signer_env()}
        with service_stack(engine="native", env=env) as stack:
            key = issue_key(stack.env, "schemathesis@example.com")
            yield LiveApi(stack.base, key)


@pytest.fixture(scope="module")
def api_schema(live_api: LiveApi) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_api.base}/openapi.json", config=CONFIG)


def _operations(schema: BaseSchema) -> list[APIOperation[Any, Any, Any, Any]]:
    operations = []
    for found in schema.get_all_operations():
        assert isinstance(found, Ok), found  # the document itself must be valid
        operations.append(found.ok())
    return operations


# Hypothesis settings for every run; the health checks would flag the deliberately
# narrow URL pattern as "filtering too much".
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)

CREDENTIALS: dict[str, Callable[[LiveApi], dict[str, str]]] = {
    "anonymous": lambda api: {},
    "api-key": lambda api: {"X-Api-Key": api.key},
    "admin": lambda api: {"Authorization": f"Bearer {ADMIN_TOKEN}"},
}


# Schemathesis's own pytest plugin (lazy schemas from a fixture) does not work with this
# pytest, so each operation's strategy is run through Hypothesis here, which is all the
# plugin does.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_the_service_keeps_its_document(
    api_schema: BaseSchema, live_api: LiveApi, credential: str, mode: GenerationMode
) -> None:
    headers: dict[str, str] = CREDENTIALS[credential](live_api)
    failures: list[str] = []
    for operation in _operations(api_schema):

        @BOUNDED
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Case[Any]) -> None:
            case.call_and_validate(base_url=live_api.base, headers=headers)

        try:
            run()  # hypothesis fills `case`
        except Unsatisfiable:
            # An operation without inputs has nothing to break: no negative case exists.
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as error:  # every operation's failure, not just the first
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
