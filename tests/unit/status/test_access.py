"""The host names the status API answers, and the page's cookie that is not the token."""

from __future__ import annotations

from docproc.status.web.access import served_hosts, session_value


def test_a_loopback_address_answers_every_loopback_name_and_those_listed() -> None:
    assert served_hosts("127.0.0.1", ()) == {"127.0.0.1", "localhost", "::1"}
    assert served_hosts("localhost", ("Docproc.Example.org",)) == {
        "localhost", "127.0.0.1", "::1", "docproc.example.org"}
    assert served_hosts("[::1]", ()) == {"::1", "localhost", "127.0.0.1"}
    assert served_hosts("10.0.0.5", ()) == {"10.0.0.5"}


def test_a_wildcard_address_answers_any_name_unless_some_are_listed() -> None:
    assert served_hosts("0.0.0.0", ()) is None
    assert served_hosts("::", ("docproc.example.org",)) == {"docproc.example.org"}


def test_the_session_cookie_is_derived_from_the_token_and_does_not_reveal_it() -> None:
    assert session_value("s3cret") == session_value("s3cret") != session_value("other")
    assert "s3cret" not in session_value("s3cret")
