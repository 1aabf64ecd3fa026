"""Admin UI rules that need no database: the workflow editor's form to API JSON, what a look-up
searches for, the message preview, the CSRF token, and where sign-in may send the browser next."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tessera.admin.auth_pages import _safe_next
from tessera.admin.messaging_pages import render_preview, workflow_body
from tessera.admin.service import csrf_matches, csrf_token
from tessera.customers.identifiers import CustomerRef, IdentifierKind, customer_refs
from tessera.messaging.schemas import WorkflowIn, validated

# ------------------------------------------------------------------------------------------------
# workflow_body


class TestWorkflowBody:
    def test_flat_fields_become_the_apis_workflow(self) -> None:
        fields = {
            "name": "Welcome code",
            "enabled": "on",
            "trigger_kind": "event",
            "trigger_value": "promo_signup",
            "steps-0-type": "issue_promocode",
            "steps-0-group": "Summer",
            "steps-0-as": "code",
            "steps-1-type": "send",
            "steps-1-message_id": "12",
            "steps-1-to_param": "EmailAddress",
            "steps-2-type": "add_tag",
            "steps-2-tag": "Got summer code",
            "steps-3-type": "wait",
            "steps-3-seconds": "3600",
        }

        assert workflow_body(fields) == {
            "name": "Welcome code",
            "enabled": True,
            "trigger": {"event": "promo_signup"},
            "steps": [
                {"type": "issue_promocode", "group": "Summer", "as": "code"},
                {"type": "send", "message_id": "12", "to_param": "EmailAddress"},
                {"type": "add_tag", "tag": "Got summer code"},
                {"type": "wait", "seconds": "3600"},
            ],
        }

    def test_the_result_is_a_valid_api_workflow(self) -> None:
        fields = {
            "name": "Welcome",
            "trigger_value": "signup",
            "steps-0-type": "send",
            "steps-0-message_id": "12",
            "steps-1-type": "wait",
            "steps-1-seconds": "1.5",
        }

        workflow = validated(WorkflowIn, workflow_body(fields))

        assert [step.dump() for step in workflow.steps] == [
            {"type": "send", "message_id": 12},
            {"type": "wait", "seconds": 1.5},
        ]

    def test_blank_rows_are_skipped(self) -> None:
        fields = {
            "steps-0-type": "",
            "steps-0-group": "",
            "steps-1-type": "add_tag",
            "steps-1-tag": "VIP",
            "steps-2-type": "",
            "steps-2-tag": "typed, but the row has no type",
        }

        assert workflow_body(fields)["steps"] == [{"type": "add_tag", "tag": "VIP"}]

    def test_fields_of_other_step_types_are_dropped(self) -> None:
        """The editor keeps every field of a row: only those of the chosen type are sent."""
        fields = {
            "steps-0-type": "add_tag",
            "steps-0-tag": "VIP",
            "steps-0-group": "Summer",
            "steps-0-message_id": "12",
            "steps-0-seconds": "60",
            "steps-1-type": "send",
            "steps-1-message_id": "12",
            "steps-1-tag": "left over",
            "steps-1-as": "code",
        }

        assert workflow_body(fields)["steps"] == [
            {"type": "add_tag", "tag": "VIP"},
            {"type": "send", "message_id": "12"},
        ]

    def test_steps_are_ordered_by_their_index_as_a_number(self) -> None:
        fields = {
            "steps-10-type": "add_tag",
            "steps-10-tag": "third",
            "steps-2-type": "add_tag",
            "steps-2-tag": "second",
            "steps-0-type": "add_tag",
            "steps-0-tag": "first",
        }

        assert [step["tag"] for step in workflow_body(fields)["steps"]] == ["first", "second", "third"]

    def test_fields_that_are_not_step_fields_are_ignored(self) -> None:
        fields = {
            "steps-0-type": "add_tag",
            "steps-0-tag": "VIP",
            "steps-0-evil": "x",
            "steps-x-type": "wait",
            "steps-1000-type": "wait",
            "steps-1000-seconds": "5",
            "steps-1-type-extra": "wait",
            "csrf_token": "abc",
        }

        assert workflow_body(fields)["steps"] == [{"type": "add_tag", "tag": "VIP"}]

    def test_an_unknown_step_type_is_passed_on_for_validation_to_refuse(self) -> None:
        body = workflow_body(
            {"name": "W", "trigger_value": "e", "steps-0-type": "rm -rf", "steps-0-tag": "x"}
        )

        assert body["steps"] == [{"type": "rm -rf"}]

    @pytest.mark.parametrize(
        ("fields", "trigger"),
        [
            pytest.param({"trigger_kind": "tag", "trigger_value": "VIP"}, {"tag": "VIP"}, id="tag"),
            pytest.param(
                {"trigger_kind": "event", "trigger_value": "signup"}, {"event": "signup"}, id="event"
            ),
            pytest.param({"trigger_value": "signup"}, {"event": "signup"}, id="event-by-default"),
            pytest.param({"trigger_kind": "cron", "trigger_value": "x"}, {"event": "x"}, id="unknown-kind"),
            pytest.param({"trigger_kind": "tag", "trigger_value": ""}, {"tag": None}, id="empty-value"),
        ],
    )
    def test_the_trigger(self, fields: dict[str, str], trigger: dict[str, Any]) -> None:
        assert workflow_body(fields)["trigger"] == trigger

    @pytest.mark.parametrize(
        ("value", "enabled"), [("on", True), ("", False), ("true", False), (None, False)]
    )
    def test_enabled_only_when_the_box_is_ticked(self, value: str | None, enabled: bool) -> None:
        fields = {} if value is None else {"enabled": value}

        assert workflow_body(fields)["enabled"] is enabled

    def test_an_empty_form_is_an_empty_workflow(self) -> None:
        assert workflow_body({}) == {"name": "", "enabled": False, "trigger": {"event": None}, "steps": []}


# ------------------------------------------------------------------------------------------------
# customer_refs


class TestCustomerRefs:
    def test_an_email_is_searched_lower_case_and_as_an_external_id_as_typed(self) -> None:
        assert customer_refs("Anna@Example.COM") == [
            CustomerRef(IdentifierKind.EMAIL, "anna@example.com"),
            CustomerRef(IdentifierKind.ORIGIN_USER_ID, "Anna@Example.COM"),
        ]

    @pytest.mark.parametrize(
        "typed", ["+7 900 123 45 67", "+7 (900) 123-45-67", "79001234567", "7.900.123.45.67"]
    )
    def test_a_phone_is_searched_normalised(self, typed: str) -> None:
        assert customer_refs(typed) == [
            CustomerRef(IdentifierKind.PHONE, "79001234567"),
            CustomerRef(IdentifierKind.ORIGIN_USER_ID, typed),
        ]

    def test_anything_else_is_an_external_id(self) -> None:
        assert customer_refs("crm-42") == [CustomerRef(IdentifierKind.ORIGIN_USER_ID, "crm-42")]

    @pytest.mark.parametrize("typed", ["123456789", "1234567890123456"], ids=["9-digits", "16-digits"])
    def test_too_few_or_too_many_digits_are_not_a_phone(self, typed: str) -> None:
        assert customer_refs(typed) == [CustomerRef(IdentifierKind.ORIGIN_USER_ID, typed)]

    @pytest.mark.parametrize("typed", ["", "   ", "x" * 256])
    def test_nothing_searchable(self, typed: str) -> None:
        assert customer_refs(typed) == []


# ------------------------------------------------------------------------------------------------
# render_preview


class TestRenderPreview:
    async def test_each_template_is_rendered_with_the_sample_as_data(self) -> None:
        sources = {"subject": "Hi $!data.get('name')", "text": "Code $!data.get('code')"}

        assert await render_preview(sources, '{"code": "A1", "name": "Anna"}') == {
            "rendered": {"subject": "Hi Anna", "text": "Code A1"},
            "problems": {},
        }

    async def test_nested_data_and_a_missing_key(self) -> None:
        sources = {"text": "$!data.get('items').get(0).get('sku') / $!data.get('missing') / $!data.get('n')"}

        result = await render_preview(sources, '{"items": [{"sku": "A1"}], "n": 2}')

        assert result == {"rendered": {"text": "A1 /  / 2"}, "problems": {}}

    @pytest.mark.parametrize("sample", ["", "   \n"])
    async def test_an_empty_sample_is_no_data(self, sample: str) -> None:
        assert await render_preview({"text": "[$!data.get('code')]"}, sample) == {
            "rendered": {"text": "[]"},
            "problems": {},
        }

    @pytest.mark.parametrize("sample", ['{"code": ', "code=A1", "{'code': 'A1'}"])
    async def test_a_sample_that_is_not_json_is_reported(self, sample: str) -> None:
        result = await render_preview({"text": "x"}, sample)

        assert list(result) == ["error"]
        assert result["error"].startswith("Sample data is not valid JSON: ")

    @pytest.mark.parametrize("sample", ["[1, 2]", '"text"', "42", "null"])
    async def test_a_sample_that_is_not_an_object_is_reported(self, sample: str) -> None:
        assert await render_preview({"text": "x"}, sample) == {
            "error": 'Sample data must be a JSON object, like {"code": "A1"}'
        }

    @pytest.mark.parametrize(
        ("source", "problem"),
        [
            pytest.param("$data.__class__", "templates may not contain '__' (line 1)", id="dunder"),
            pytest.param("Hi\n\n$data._values", "templates may not contain '._' (line 3)", id="private"),
            pytest.param("#evaluate('x')", "templates may not contain '#evaluate' (line 1)", id="evaluate"),
            pytest.param(
                "$!data.get('a').format(1)", "templates may not contain '.format' (line 1)", id="format"
            ),
        ],
    )
    async def test_a_refused_template_is_a_problem_with_its_line(self, source: str, problem: str) -> None:
        assert await render_preview({"text": source}, "{}") == {"rendered": {}, "problems": {"text": problem}}

    async def test_a_syntax_error_is_a_problem_with_line_and_column(self) -> None:
        result = await render_preview({"htmlText": "<p>Hi</p>\n#foreach($x in"}, "{}")

        assert result["rendered"] == {}
        assert re.search(r"\(line 2, column \d+\)$", result["problems"]["htmlText"])

    async def test_a_render_failure_is_a_problem(self) -> None:
        result = await render_preview({"text": "$data.get('items').get(5)"}, '{"items": [1]}')

        assert result == {"rendered": {}, "problems": {"text": "no element 5 in a list of 1"}}

    async def test_one_bad_template_does_not_stop_the_others(self) -> None:
        result = await render_preview(
            {"subject": "$x.__class__", "text": "Code $!data.get('code')"}, '{"code": "A1"}'
        )

        assert result["rendered"] == {"text": "Code A1"}
        assert list(result["problems"]) == ["subject"]

    async def test_the_sample_cannot_reach_python_internals(self) -> None:
        """A key named like a method is just data: ``get`` still looks values up."""
        result = await render_preview(
            {"text": "$!data.get('get') $!data.get('code')"}, '{"get": "G", "code": "A1"}'
        )

        assert result == {"rendered": {"text": "G A1"}, "problems": {}}


# ------------------------------------------------------------------------------------------------
# CSRF tokens

SECRET = "test-secret"


class TestCsrfToken:
    def test_the_same_session_always_gets_the_same_token(self) -> None:
        assert csrf_token(SECRET, "session-1") == csrf_token(SECRET, "session-1")

    def test_a_token_is_64_hex_digits(self) -> None:
        assert re.fullmatch(r"[0-9a-f]{64}", csrf_token(SECRET, "session-1"))

    def test_another_session_or_secret_gets_another_token(self) -> None:
        tokens = {
            csrf_token(SECRET, "session-1"),
            csrf_token(SECRET, "session-2"),
            csrf_token("other", "session-1"),
        }

        assert len(tokens) == 3

    def test_the_token_is_not_the_session(self) -> None:
        assert "session-1" not in csrf_token(SECRET, "session-1")

    def test_the_sessions_own_token_matches(self) -> None:
        assert csrf_matches(SECRET, "session-1", csrf_token(SECRET, "session-1"))

    @pytest.mark.parametrize(
        "submitted",
        [
            pytest.param(None, id="missing"),
            pytest.param("", id="empty"),
            pytest.param("0" * 64, id="wrong"),
            pytest.param(csrf_token(SECRET, "session-2"), id="another-sessions"),
            pytest.param(csrf_token("other", "session-1"), id="another-secrets"),
            pytest.param(csrf_token(SECRET, "session-1")[:-1], id="truncated"),
            pytest.param(csrf_token(SECRET, "session-1").upper(), id="upper-case"),
        ],
    )
    def test_anything_else_does_not_match(self, submitted: str | None) -> None:
        assert not csrf_matches(SECRET, "session-1", submitted)


# ------------------------------------------------------------------------------------------------
# _safe_next


class TestSafeNext:
    @pytest.mark.parametrize(
        "path",
        [
            "/admin/",
            "/admin/settings",
            "/admin/lookup?q=A1&x=2",
            "/admin/promocodes/groups/5#codes",
            "/admin//x",
        ],
    )
    def test_a_path_inside_the_admin_ui_is_kept(self, path: str) -> None:
        assert _safe_next(path) == path

    @pytest.mark.parametrize(
        "raw",
        [
            None,
            "",
            "/admin",
            "/",
            "/api/v1/messages",
            "admin/settings",
            "https://evil.example/admin/",
            "http://tessera.test/admin/",
            "//evil.example/admin/",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/admin/\\\\evil.example",
            "javascript:alert(1)",
            " /admin/",
        ],
    )
    def test_anything_else_is_the_dashboard(self, raw: str | None) -> None:
        assert _safe_next(raw) == "/admin/"
