"""What the later stages store per document: images, chunks, vectors, enrichment answers.

Writers run in the worker under a held lease and write in bulk (ROWS_PER_STATEMENT
rows per statement); readers serve the API and the document page.
"""


def batched(items: list, size: int):
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
