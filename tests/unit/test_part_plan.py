"""The part plan: sizes as a user writes them, S3's part limits, and how one object is cut."""

from __future__ import annotations

import pytest

from gos3matic.core.sizes import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    GiB,
    KiB,
    MiB,
    TiB,
    parse_size,
    part_plan,
    part_size_option,
    tagging_header,
    threshold_option,
)
from gos3matic.errors import InputError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("5242880", 5 * MiB),
        ("512B", 512),
        ("8KiB", 8 * KiB),
        ("8MiB", 8 * MiB),
        ("8 MiB", 8 * MiB),
        ("8mib", 8 * MiB),
        ("5GiB", 5 * GiB),
        ("1.5GiB", 3 * GiB // 2),
        ("5TiB", 5 * TiB),
    ],
)
def test_a_size_is_bytes_or_a_binary_unit(text: str, size: int) -> None:
    assert parse_size(text, "--part-size") == size


@pytest.mark.parametrize("text", ["8MB", "8mb", "8M", "5GB", "5G", "100KB", "1k"])
def test_decimal_looking_units_are_refused_as_ambiguous(text: str) -> None:
    with pytest.raises(InputError, match="ambiguous"):
        parse_size(text, "--part-size")


@pytest.mark.parametrize("text", ["", "MiB", "-5MiB", "5 MiBs", "five", "5PiB", "0x10"])
def test_a_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="--part-size"):
        parse_size(text, "--part-size")


def test_a_fraction_of_a_byte_is_refused() -> None:
    with pytest.raises(InputError, match="whole number of bytes"):
        parse_size("1.5B", "--part-size")


def test_defaults_are_the_single_copy_limit_and_an_automatic_part_size() -> None:
    assert threshold_option(None) == DEFAULT_THRESHOLD == 5 * GiB
    assert part_size_option(None) is None


@pytest.mark.parametrize("text", ["5MiB", "64MiB", "5GiB", str(5 * MiB)])
def test_part_sizes_within_s3_limits_are_accepted(text: str) -> None:
    assert part_size_option(text) == parse_size(text, "--part-size")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5242879", "below S3's smallest part, 5 MiB"),
        ("4MiB", "below S3's smallest part, 5 MiB"),
        ("0", "below"),
        ("5121MiB", "above S3's largest part, 5 GiB"),
        (str(5 * GiB + 1), "above S3's largest part, 5 GiB"),
    ],
)
def test_a_part_size_outside_s3_limits_is_bad_input(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        part_size_option(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (str(5 * GiB + 1), "above 5 GiB, the largest object one CopyObject can copy"),
        ("6GiB", "above 5 GiB"),
        ("1", "below 5 MiB"),
        ("0", "below 5 MiB"),
    ],
)
def test_a_threshold_outside_5mib_to_5gib_is_bad_input(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        threshold_option(text)


@pytest.mark.parametrize("text", ["5MiB", "8MiB", "5GiB"])
def test_thresholds_within_limits_are_accepted(text: str) -> None:
    assert threshold_option(text) == parse_size(text, "--multipart-threshold")


def test_a_5_tib_object_fits_in_10000_parts_by_default() -> None:
    plan = part_plan(5 * TiB)
    assert plan.parts <= 10_000
    assert plan.part_size == 1 * GiB  # 16 MiB doubled six times
    assert plan.parts == 5120


def test_a_5_tib_object_with_the_smallest_part_size_gets_larger_parts() -> None:
    plan = part_plan(5 * TiB, 5 * MiB)
    assert plan.parts <= 10_000
    assert plan.part_size == 640 * MiB  # 5 MiB doubled until 10,000 parts hold 5 TiB
    assert plan.part_size * (plan.parts - 1) < 5 * TiB <= plan.part_size * plan.parts


def test_a_5_tib_object_with_the_largest_part_size_is_1024_parts() -> None:
    plan = part_plan(5 * TiB, 5 * GiB)
    assert (plan.part_size, plan.parts) == (5 * GiB, 1024)


def test_exactly_5_gib_is_cut_by_the_default_part_size() -> None:
    plan = part_plan(5 * GiB)
    assert (plan.part_size, plan.parts) == (DEFAULT_PART_SIZE, 5 * GiB // DEFAULT_PART_SIZE)


def test_5_gib_and_one_byte_ends_with_a_one_byte_part() -> None:
    plan = part_plan(5 * GiB + 1, 5 * GiB)
    assert (plan.part_size, plan.parts) == (5 * GiB, 2)
    plan = part_plan(5 * GiB + 1)
    assert plan.parts == 5 * GiB // DEFAULT_PART_SIZE + 1


def test_the_smallest_part_size_is_kept_while_10000_parts_suffice() -> None:
    assert part_plan(10_000 * 5 * MiB, 5 * MiB).part_size == 5 * MiB
    assert part_plan(10_000 * 5 * MiB + 1, 5 * MiB).part_size == 10 * MiB


def test_an_object_smaller_than_one_part_is_one_part() -> None:
    assert part_plan(6 * MiB, 64 * MiB).parts == 1


def test_tags_travel_url_encoded() -> None:
    tags = [{"Key": "team", "Value": "a b+c=d/e:f@g"}, {"Key": "é", "Value": "&"}]
    assert tagging_header(tags) == "team=a%20b%2Bc%3Dd%2Fe%3Af%40g&%C3%A9=%26"


@pytest.mark.parametrize("wanted", [None, 1, 5 * MiB, 16 * MiB, 64 * MiB, 5 * GiB, 6 * GiB])
@pytest.mark.parametrize(
    "size", [0, 1, 5 * MiB, 5 * GiB + 1, 160 * GiB, 157 * GiB + 3, TiB, 5 * TiB - 1, 5 * TiB]
)
def test_the_part_plan_is_the_rule_s3transfers_managed_copy_applies(wanted, size):
    # The plan is computed without s3transfer (parsing arguments imports no I/O library), so it is
    # held here against the adjuster the copy itself runs.
    from s3transfer.utils import ChunksizeAdjuster

    adjuster = ChunksizeAdjuster(max_size=5 * GiB, min_size=5 * MiB, max_parts=10_000)
    chosen = DEFAULT_PART_SIZE if wanted is None else wanted
    assert part_plan(size, wanted).part_size == adjuster.adjust_chunksize(chosen, size)
