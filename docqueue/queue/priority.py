"""Default priority from file size: small files first, so one huge upload never blocks many small ones."""

MB = 1024 * 1024

# (upper bound in bytes, priority); higher priority is admitted first.
_SIZE_PRIORITIES = ((1 * MB, 10), (5 * MB, 8), (10 * MB, 6), (50 * MB, 4))
LOWEST_PRIORITY = 2


def priority_for_size(size_bytes: int) -> int:
    """≤1 MB → 10, ≤5 MB → 8, ≤10 MB → 6, ≤50 MB → 4, larger → 2."""
    for upper_bound, priority in _SIZE_PRIORITIES:
        if size_bytes <= upper_bound:
            return priority
    return LOWEST_PRIORITY


def priority_for_size_sql(size_column: str) -> str:
    """`priority_for_size` as an SQL expression over `size_column`, from the same table."""
    cases = " ".join(f"WHEN {size_column} <= {bound} THEN {priority}" for bound, priority in _SIZE_PRIORITIES)
    return f"CASE {cases} ELSE {LOWEST_PRIORITY} END"
