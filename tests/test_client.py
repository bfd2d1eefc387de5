"""The client's message helpers, without a server: URLs, error details, the token lookup.
(Against a real server: tests/integration/test_cli_messages.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.client import InvalidUrl, detail_lines, find_token, normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:8000", "http://h:8000"),
        ("http://h:8000/", "http://h:8000"),
        ("http://h:8000/api/v1", "http://h:8000"),
        (" https://h/api/v1/ ", "https://h"),
        ("http://h:8000/prefix/api/v1", "http://h:8000/prefix"),
    ],
)
def test_urls_lose_the_api_prefix_and_trailing_slashes(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("127.0.0.1:8000", "'127.0.0.1:8000' has no scheme: write http://127.0.0.1:8000"),
        ("localhost:8000/api/v1", "has no scheme: write http://localhost:8000"),
        ("ftp://h:21", "'ftp://h:21' is not an http:// or https:// URL"),
        ("http://", "names no host"),
    ],
)
def test_unusable_urls_say_what_to_write(given: str, message: str) -> None:
    with pytest.raises(InvalidUrl) as raised:
        normalise_url(given)
    assert message in str(raised.value)


def test_details_are_one_line_per_field_named_once() -> None:
    detail = [
        # InvalidRequest messages of older servers repeated the field
        {"loc": ["body", "objective_args", "epochs"], "msg": "objective_args.epochs: too low"},
        # FastAPI's own: the discriminator tag after space.<name>, pydantic's prefix
        {"loc": ["body", "space", "lr", "float"], "msg": "Value error, low must be < high"},
        # a parameter named like a type keeps its name
        {"loc": ["body", "space", "int", "int", "low"], "msg": "Field required"},
        # a list-valued query parameter: no index
        {"loc": ["query", "state", 0], "msg": "Input should be 'queued' or 'running'"},
        # body list items keep theirs
        {"loc": ["body", "enqueue", 1, "x"], "msg": "Extra inputs are not permitted"},
        {"loc": [], "msg": "no field"},
    ]
    assert detail_lines(detail) == [
        "objective_args.epochs: too low",
        "space.lr: low must be < high",
        "space.int.low: Field required",
        "state: Input should be 'queued' or 'running'",
        "enqueue.1.x: Extra inputs are not permitted",
        "no field",
    ]
    assert detail_lines("study 3 not found") == ["study 3 not found"]


def test_find_token_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:8123"
    monkeypatch.delenv("TUNESMITH_TOKEN", raising=False)
    monkeypatch.delenv("TUNESMITH_TOKEN_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    own = tmp_path / ".tunesmith" / "tokens" / "127.0.0.1-8123"
    shared = tmp_path / ".tunesmith" / "token"
    assert find_token(url) == (
        None,
        f"TUNESMITH_TOKEN is not set, no token file {own} and no token file {shared}",
    )
    shared.parent.mkdir()
    shared.write_text("\n")
    assert find_token(url) == (
        None,
        f"TUNESMITH_TOKEN is not set, no token file {own} and the token file {shared} is empty",
    )
    shared.write_text("ts_shared\n")
    assert find_token(url) == ("ts_shared", f"the token file {shared}")

    explicit = tmp_path / "explicit"
    monkeypatch.setenv("TUNESMITH_TOKEN_FILE", str(explicit))
    assert find_token(url) == (None, f"TUNESMITH_TOKEN is not set, no token file {explicit}")
    explicit.write_text("ts_abc\n")
    assert find_token(url) == ("ts_abc", f"the token file {explicit}")
    monkeypatch.setenv("TUNESMITH_TOKEN", "ts_env")
    assert find_token(url) == ("ts_env", "TUNESMITH_TOKEN")
