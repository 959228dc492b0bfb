"""Keyset chunk planning, as the planner and the dry run share it: boundaries become
consecutive key ranges, and a short page ends the walk with the tail up to the upper key."""

from __future__ import annotations

import itertools

from orchestrator.domain.chunking import Chunk, chunk_page

UPPER = ["9"]


def test_a_full_page_chains_its_boundaries_and_asks_for_more() -> None:
    page = chunk_page(None, [["2"], ["4"], ["6"]], UPPER, batch=3)
    assert page.chunks == [Chunk(None, ["2"]), Chunk(["2"], ["4"]), Chunk(["4"], ["6"])]
    assert page.cursor == ["6"]
    assert not page.done


def test_a_short_page_adds_the_tail_and_is_done() -> None:
    page = chunk_page(["6"], [["8"]], UPPER, batch=3)
    assert page.chunks == [Chunk(["6"], ["8"]), Chunk(["8"], UPPER)]
    assert page.cursor == UPPER
    assert page.done


def test_no_boundary_left_makes_one_tail_from_the_cursor() -> None:
    page = chunk_page(["6"], [], UPPER, batch=3)
    assert page.chunks == [Chunk(["6"], UPPER)]
    assert page.done


def test_a_table_smaller_than_one_chunk_is_one_run_from_the_start() -> None:
    page = chunk_page(None, [], UPPER, batch=3)
    assert page.chunks == [Chunk(None, UPPER)]
    assert page.cursor == UPPER
    assert page.done


def test_no_tail_when_the_last_boundary_is_the_upper_key() -> None:
    page = chunk_page(["6"], [UPPER], UPPER, batch=3)
    assert page.chunks == [Chunk(["6"], UPPER)]
    assert page.done


def test_nothing_more_when_a_full_page_ended_on_the_upper_key() -> None:
    # The next page after it returns no boundary: no empty range is made.
    page = chunk_page(UPPER, [], UPPER, batch=3)
    assert page.chunks == []
    assert page.done


def test_composite_keys_compare_whole() -> None:
    upper = ["2024-01-02", "7"]
    page = chunk_page(None, [["2024-01-02", "3"]], upper, batch=2)
    assert page.chunks == [Chunk(None, ["2024-01-02", "3"]), Chunk(["2024-01-02", "3"], upper)]


def test_pages_walked_to_the_end_cover_the_keys_without_gaps() -> None:
    keys = [[str(k)] for k in range(10, 100, 10)]
    upper, cursor, done, chunks = ["95"], None, False, []
    while not done:
        after = [k for k in keys if cursor is None or int(k[0]) > int(cursor[0])]
        page = chunk_page(cursor, after[:4], upper, batch=4)
        chunks += page.chunks
        cursor, done = page.cursor, page.done
    assert chunks[0].lower_key is None
    assert chunks[-1].upper_key == upper
    assert all(a.upper_key == b.lower_key for a, b in itertools.pairwise(chunks))
    assert len(chunks) == len(keys) + 1
