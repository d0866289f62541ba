"""Pages of a run: each page's text and OCR words as the stages write them, and the pages a reader sees.

The stages' page outputs live here, keyed by their run (the job's id), as the other outputs do in
this package.
"""

from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.db import copy_rows
from docqueue.models import DocumentPage
from docqueue.queue.run_outputs import results_run


def page_texts(session: Session, document_id: int) -> list[tuple[int, str]]:
    """(page number, text) of every page a reader sees (see `run_outputs.results_run`), in order."""
    return [(page.page_number, page.text) for page in result_pages(session, document_id)]


def result_pages(session: Session, document_id: int, after: int = 0, limit: int | None = None) -> list[DocumentPage]:
    """The pages a reader sees, numbered after `after`, at most `limit`: those of the run `results_run` names."""
    run = results_run(session, document_id)
    query = (
        select(DocumentPage)
        .where(DocumentPage.job_id == run.job_id, DocumentPage.page_number > after)
        .order_by(DocumentPage.page_number)
        .limit(limit)
    )
    return list(session.scalars(query))


def page_notes(session: Session, document_id: int) -> list[tuple[int, str]]:
    """(page number, note) of the pages a reader sees whose contents could not be read, in order."""
    run = results_run(session, document_id)
    query = (
        select(DocumentPage.page_number, DocumentPage.note)
        .where(DocumentPage.job_id == run.job_id, DocumentPage.note.is_not(None))
        .order_by(DocumentPage.page_number)
    )
    return [(number, note) for number, note in session.execute(query)]


def save_page_texts(
    session: Session, document_id: int, job_id: int, pages: list[tuple[int, str, bool, str | None]]
) -> None:
    """Upsert a batch of run `job_id`'s pages (number, text, whether the text was cut, why its contents could
    not be read or None) in one statement: an attempt that redoes a page rewrites it."""
    statement = insert(DocumentPage).values(
        [
            {
                "job_id": job_id,
                "document_id": document_id,
                "page_number": number,
                "text": page_text,
                "char_count": len(page_text),
                "text_cut": cut,
                "note": note,
            }
            for number, page_text, cut, note in pages
        ]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DocumentPage.job_id, DocumentPage.page_number],
            set_={
                "text": statement.excluded.text,
                "char_count": statement.excluded.char_count,
                "text_cut": statement.excluded.text_cut,
                "note": statement.excluded.note,
            },
        )
    )


def copy_page_texts(
    session: Session, document_id: int, job_id: int, pages: list[tuple[int, str, bool, str | None]]
) -> None:
    """Insert run `job_id`'s pages (as `save_page_texts` takes them) with one COPY: for a run that has none yet
    (a small document's one pass), where there is nothing to rewrite."""
    with copy_rows(
        session,
        "COPY document_pages (job_id, document_id, page_number, text, char_count, text_cut, note) FROM STDIN "
        "(FORMAT BINARY)",
        ["int8", "int8", "int4", "text", "int4", "bool", "text"],
    ) as copy:
        for number, page_text, cut, note in pages:
            copy.write_row((job_id, document_id, number, page_text, len(page_text), cut, note))


def save_ocr_pages(session: Session, job_id: int, pages: list[dict]) -> None:
    """Store what OCR read on a batch of run `job_id`'s pages, in one statement, flagging them `ocr`.

    Each of `pages` has `page_number`, `text`, `ocr_words` and `ocr_rotation`.
    """
    session.execute(
        text(
            """
            UPDATE document_pages p SET text = v.text, char_count = length(v.text), ocr = true,
                   ocr_words = v.ocr_words, ocr_rotation = v.ocr_rotation
            FROM jsonb_to_recordset(CAST(:pages AS jsonb))
                 AS v(page_number int, text text, ocr_words jsonb, ocr_rotation int)
            WHERE p.job_id = :job_id AND p.page_number = v.page_number
            """
        ),
        {"job_id": job_id, "pages": json.dumps(pages)},
    )


def pages_awaiting_ocr(session: Session, job_id: int) -> tuple[list[int], int]:
    """(numbers of run `job_id`'s pages with no text that OCR has not read yet, how many need OCR in all).

    A page whose contents could not be read (it has a `note`) is not for OCR: rendering it fails the same way.
    """
    rows = session.execute(
        text(
            """
            SELECT page_number, ocr FROM document_pages
            WHERE job_id = :job_id AND (ocr OR (text = '' AND NOT text_cut AND note IS NULL)) ORDER BY page_number
            """
        ),
        {"job_id": job_id},
    ).all()
    return [number for number, done in rows if not done], len(rows)


def text_kept_before(session: Session, job_id: int, checkpoint: int, max_page_chars: int) -> tuple[int, int | None]:
    """(characters run `job_id` kept on pages up to `checkpoint`, the first of them the document's text budget
    cut, if any): where a retried `extract_text` goes on from.

    A page the budget cut kept fewer than `max_page_chars` characters; one cut
    only by MAX_PAGE_TEXT_CHARS kept exactly that many.
    """
    kept, cut_at = session.execute(
        text(
            """
            SELECT coalesce(sum(char_count), 0),
                   min(page_number) FILTER (WHERE text_cut AND char_count < :max_page_chars)
            FROM document_pages WHERE job_id = :job_id AND page_number <= :checkpoint
            """
        ),
        {"job_id": job_id, "checkpoint": checkpoint, "max_page_chars": max_page_chars},
    ).one()
    return kept, cut_at
