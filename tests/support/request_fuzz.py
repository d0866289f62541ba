"""Hypothesis strategies and checks shared by the request fuzzers: generated paths, queries, form fields, files."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support.factories import make_pdf

FUZZ_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


#: Text a header can carry: HTTP's field-value characters (RFC 9110: visible ASCII, space, latin-1 obs-text).
#: DEL and other controls make the request malformed HTTP, refused by gunicorn before any route is reached.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=300)


#: Text a client can send: anything with a UTF-8 form (lone surrogates have none; no client can encode them).
sendable_characters = st.characters(exclude_categories=("Cs",))

#: Anything a form field or query value can carry, NUL and bidi overrides included.
any_text = st.one_of(
    st.text(sendable_characters, max_size=300),
    st.sampled_from(
        ["", "-1", "0", "1", "24", "100", "101", "1e3", "abc", "\u00b2", "\x00", "\u202e"]
        + ["9223372036854775807", "9223372036854775808", "99999999999999999999", "failed", "pending", "retry"]
    ),
)


#: The query parameters the routes read, and some they do not.
query = st.dictionaries(
    st.sampled_from(
        [
            "limit",
            "after",
            "before",
            "hours",
            "q",
            "status",
            "stage",
            "operation",
            "user",
            "priority",
            "error",
            "window",
        ]
        + ["x", "\x00"]
    ),
    any_text,
    max_size=3,
)


path_segment = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(
        # No lone surrogates: no client can put them in a URL (they have no UTF-8 form).
        st.characters(min_codepoint=33, max_codepoint=0x10FFFF, exclude_characters="/?#%", exclude_categories=("Cs",)),
        min_size=1,
        max_size=30,
    ),
)


file_bytes = st.one_of(
    st.just(b""),
    st.binary(max_size=2000),
    st.just(make_pdf(["fuzz"])),
    st.binary(max_size=200).map(lambda junk: b"%PDF-1.7\n" + junk),
)


#: A part's Content-Type or file name: any text a header line can hold (a line break would end the header).
header_line_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=400)


file_part = st.tuples(file_bytes, header_line_text, st.one_of(st.none(), header_line_text))


#: A path's id: generated, or the fuzzing user's own document (so a route gets past its ownership check).
id_segment = st.one_of(path_segment, st.just("{own}"))


def counts(engine) -> tuple:
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM blob_chunks), "
                    "(SELECT count(*) FROM document_queue), (SELECT count(*) FROM idempotency_keys)"
                )
            ).one()
        )


def with_ids(draw, template: str) -> str:
    """`template` with each `{id}` replaced by a drawn id segment (`{own}` stays, for the test to fill in)."""
    while "{id}" in template:
        template = template.replace("{id}", draw(id_segment), 1)
    return template


def own_document(session, user_id: int) -> int:
    """A document of the fuzzing user's, so that the routes taking one get past their ownership check."""
    from tests.support.factories import add_document

    return add_document(session, user_id, make_pdf(["mine"]))
