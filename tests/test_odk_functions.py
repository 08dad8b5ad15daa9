"""ODK XPath functions against JavaRosa's expected values (getodk/javarosa test suite)."""

from __future__ import annotations

import ast
import datetime
import hashlib
import math
from pathlib import Path

import pytest

from yntymak_cli.forms import odk_functions as odk
from yntymak_cli.forms.odk_functions import (
    ARITY,
    area,
    base64_decode,
    checklist,
    decimal_time,
    digest,
    distance,
    random_value,
    randomize,
    substring_after,
    substring_before,
    translate,
    weighted_checklist,
)

# --------------------------------------------------------------------------- module shape


def test_module_imports_only_the_standard_library() -> None:
    # forms/expressions.py imports this module, so an import back would be a cycle.
    tree = ast.parse(Path(odk.__file__).read_text(encoding="utf-8"))
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert not {name for name in imported if name.split(".")[0] == "yntymak_cli"}
    assert imported <= {
        "__future__",
        "base64",
        "collections.abc",
        "datetime",
        "hashlib",
        "math",
        "random",
        "re",
        "secrets",
        "typing",
    }


def test_arity_names_every_function_as_odk_defines_it() -> None:
    assert ARITY == {
        "substring-before": (2, 2),
        "substring-after": (2, 2),
        "translate": (3, 3),
        "decimal-time": (1, 1),
        "checklist": (2, -1),
        "weighted-checklist": (2, -1),
        "distance": (1, 1),
        "area": (1, 1),
        "enclosed-area": (1, 1),
        "digest": (2, 3),
        "base64-decode": (1, 1),
        "randomize": (1, 2),
        "random": (0, 0),
    }


# --------------------------------------------------------------------------- strings


# JavaRosa src/test/java/org/javarosa/xpath/test/XPathEvalTest.java, "substring functions".
@pytest.mark.parametrize(
    ("text", "sep", "before", "after"),
    [
        ("hello", "l", "he", "lo"),
        ("hello", "q", "", ""),
        ("hello", "", "", "hello"),
        ("", "", "", ""),
        ("", "q", "", ""),
        # our own: only the first occurrence counts; non-ASCII text
        ("a,b,c", ",", "a", "b,c"),
        ("Бишкек—Ош", "—", "Бишкек", "Ош"),
        ("🥰x🥰", "x", "🥰", "🥰"),
    ],
)
def test_substring_before_and_after(text: str, sep: str, before: str, after: str) -> None:
    assert substring_before(text, sep) == before
    assert substring_after(text, sep) == after


@pytest.mark.parametrize(
    ("text", "source", "target", "expected"),
    [
        # JavaRosa XPathEvalTest.java
        ("hello", "l", "L", "heLLo"),
        ("hello", "q", "Q", "hello"),
        ("hello", "", "L", "hello"),
        ("hello", "l", "", "heo"),
        ("", "l", "L", ""),
        ("hello", "lo", "LO", "heLLO"),
        ("hello world", "hello", "", " wrd"),
        ("hello wor,ld", " ,", ", ", "hello,wor ld"),
        ("2019/01/02", "/", "-", "2019-01-02"),
        # XPath 1.0: the first occurrence of a repeated char in `source` decides
        ("aba", "aa", "xy", "xbx"),
        # extra chars of `target` are ignored
        ("abc", "a", "xyz", "xbc"),
        ("кыргыз", "ы", "i", "кiргiз"),
        ("a🥰b", "🥰", "*", "a*b"),
    ],
)
def test_translate(text: str, source: str, target: str, expected: str) -> None:
    assert translate(text, source, target) == expected


# --------------------------------------------------------------------------- decimal-time

MINUS_7 = datetime.timezone(datetime.timedelta(hours=-7))


# JavaRosa has no decimal-time() vectors; these are Enketo's (openrosa-xpath-evaluator,
# test/integration/openrosa-xpath/decimal-time.spec.js), run with the device at UTC-07:00.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("06:00:00.000-07:00", 0.25),
        ("06:00:00.000-01:00", 0.0),
        ("06:00:59.000-07:00", 0.25068287037037035),
        ("23:59:00.000-07:00", 0.9993055555555556),
        ("23:59:00.000-13:00", 0.24930555555555556),
    ],
)
def test_decimal_time_moves_an_offset_into_the_device_zone(text: str, expected: float) -> None:
    assert decimal_time(text, MINUS_7) == pytest.approx(expected, abs=1e-15)


def test_decimal_time_difference_from_enketo() -> None:
    later = decimal_time("12:00:00.000-07:00", MINUS_7)
    assert later - decimal_time("06:00:00.000-07:00", MINUS_7) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12:00", 0.5),
        ("18:00:00", 0.75),
        ("06:00:00.000-07:00", 0.25),  # no zone given: the clock time as written
        ("00:00:00Z", 0.0),
        ("2018-01-01T18:00:00.000+06:00", 0.75),
        ("2018-01-01", 0.0),  # a date is its midnight
        (" 6:30 ", 6.5 / 24),  # JavaRosa reads the fields as integers
    ],
)
def test_decimal_time_without_a_zone(text: str, expected: float) -> None:
    assert decimal_time(text) == pytest.approx(expected, abs=1e-15)


def test_decimal_time_converts_utc_into_a_zone() -> None:
    bishkek = datetime.timezone(datetime.timedelta(hours=6))
    assert decimal_time("00:00:00Z", bishkek) == pytest.approx(0.25)
    assert decimal_time("12:00:00", bishkek) == 0.5  # no offset: already local


@pytest.mark.parametrize(
    ("number", "expected"), [(0.75, 0.75), (19000.25, 0.25), (-0.25, 0.75), (3.0, 0.0)]
)
def test_decimal_time_of_a_number_keeps_its_fraction(number: float, expected: float) -> None:
    # JavaRosa XPathFuncExpr.toDecimalDateTime: n - floor(n)
    assert decimal_time(number) == pytest.approx(expected)


def test_decimal_time_is_nan_for_no_value() -> None:
    assert math.isnan(decimal_time(""))
    assert math.isnan(decimal_time("  "))
    assert math.isnan(decimal_time(math.nan))


@pytest.mark.parametrize(
    "bad",
    [
        "a",
        "now()",
        "24:00:00.000-07:00",
        "06:60:00.000-07:00",
        "06:00:60.000-07:00",
        "06:00:00.000-24:00",
        "23:59:00.000-07:60",
        "2026-02-30T10:00",
        "10",
    ],
)
def test_decimal_time_refuses_what_is_not_a_time(bad: str) -> None:
    with pytest.raises(ValueError, match="decimal-time"):
        decimal_time(bad)


@pytest.mark.parametrize("number", [math.inf, -math.inf, 2.0**31, -(2.0**31) - 1])
def test_decimal_time_refuses_numbers_out_of_date_range(number: float) -> None:
    with pytest.raises(ValueError, match="out of range"):
        decimal_time(number)


# --------------------------------------------------------------------------- checklists


@pytest.mark.parametrize(
    ("low", "high", "flags", "expected"),
    [
        (1, 2, (True, False, False), True),
        (2, 3, (True, False, False), False),
        (-1, 1, (True, True), False),
        (-1, 2, (True, True, False), True),
        (2, -1, (True, True, True, True), True),
        (-1, -1, (), True),
        (0, 0, (), True),
        (1.9, 1.9, (True,), True),  # bounds are truncated to integers
        (math.nan, 0, (True,), False),  # NaN is 0, as Java's (int) cast makes it
    ],
)
def test_checklist(low: float, high: float, flags: tuple[bool, ...], expected: bool) -> None:
    assert checklist(low, high, *flags) is expected


@pytest.mark.parametrize(
    ("low", "high", "pairs", "expected"),
    [
        (2, 3, (True, 2, False, 5), True),
        (2, 3, (True, 2, True, 5), False),
        (0.5, 1.5, (True, 0.75, True, 0.5), True),
        (-1, 0, (True, -1), True),
        (-1, -1, (True, 5), False),  # -1 is an ordinary bound here, unlike checklist()
        (0, 0, (), True),
        (math.nan, 10, (True, 1), False),
    ],
)
def test_weighted_checklist(
    low: float, high: float, pairs: tuple[bool | float, ...], expected: bool
) -> None:
    assert weighted_checklist(low, high, *pairs) is expected


def test_weighted_checklist_needs_a_weight_for_each_value() -> None:
    # JavaRosa XPathEvalTest: weighted-checklist(5, 5, 5) is an arity error.
    with pytest.raises(ValueError, match="weight"):
        weighted_checklist(5, 5, True)


# --------------------------------------------------------------------------- geo

QUARTER_EQUATOR_M = 2 * 6_378_100 * math.pi / 4

# JavaRosa src/test/java/org/javarosa/core/util/GeoUtilsTest.java: points, area, distance.
PATHS = [
    (
        [
            (38.253094215699576, 21.756382658677467),
            (38.25021274773806, 21.756382658677467),
            (38.25007793942195, 21.763892843919166),
            (38.25290886154963, 21.763935759263404),
            (38.25146813817506, 21.758421137528785),
        ],
        151_452,
        1_801,
    ),
    (
        [
            (38.25304740874071, 21.75644703234866),
            (38.25308110946615, 21.763377860443143),
            (38.25078942453431, 21.763399318115262),
            (38.25090738066984, 21.756640151397733),
            (38.25197740258244, 21.75892539347842),
        ],
        122_755,
        1_685,
    ),
    (
        [
            (38.252845204059824, 21.763313487426785),
            (38.25303055837213, 21.755867675201443),
            (38.25072202094234, 21.755803302185086),
            (38.25062091543717, 21.76294870700076),
            (38.25183417221606, 21.75692982997134),
        ],
        93_912,
        2_076,
    ),
]


@pytest.mark.parametrize(("points", "expected_area", "expected_distance"), PATHS)
def test_area_and_distance_of_geoshape_and_geopoint_list(
    points: list[tuple[float, float]], expected_area: int, expected_distance: int
) -> None:
    geopoints = [f"{lat} {lon} 0 0" for lat, lon in points]
    shape = "; ".join(geopoints) + ";"  # as ODK Collect stores a geoshape
    for value in (shape, geopoints):
        assert area(value) == pytest.approx(expected_area, abs=0.5)
        assert distance(value) == pytest.approx(expected_distance, abs=0.5)


def test_distance_around_the_equator() -> None:
    # GeoUtilsTest oneDegreeAroundAtEquator, ninetyDegreesAroundAtEquator, oneDegreeLongChgAt90Lat
    assert distance("0 0; 0 1") == pytest.approx(QUARTER_EQUATOR_M / 90, abs=1e-6)
    assert distance("0 0; 0 90") == pytest.approx(QUARTER_EQUATOR_M, abs=1e-6)
    assert distance("90 0; 90 1") == pytest.approx(0, abs=1e-6)
    # GeoDistanceTest: a geopoint nodeset, a geotrace, a geoshape
    assert distance(["0 1 0 0", "0 91 0 0"]) == pytest.approx(QUARTER_EQUATOR_M, abs=1e-7)
    assert distance("0 1 0 0; 0 91 0 0;") == pytest.approx(QUARTER_EQUATOR_M, abs=1e-7)
    assert distance("0 1 0 0; 0 91 0 0; 0 1 0 0;") == pytest.approx(2 * QUARTER_EQUATOR_M, abs=1e-7)


def test_area_of_fewer_than_three_points_is_zero() -> None:
    # GeoAreaTest area_whenShapeHasFewerThanThreePoints_isZero
    one = "38.253094215699576 21.756382658677467 0 0;"
    two = one + " 38.25021274773806 21.756382658677467 0 0;"
    assert area(one) == 0
    assert area(two) == 0


@pytest.mark.parametrize("value", ["", ";", [], ["1 2"]])
def test_geo_functions_of_no_or_one_point_are_zero(value: str | list[str]) -> None:
    # '' is the point (0, 0) in JavaRosa (GeoPointData fills missing parts with 0).
    assert distance(value) == 0
    assert area(value) == 0


def test_an_empty_part_of_a_shape_is_the_point_zero_zero() -> None:
    # Java's split(';') keeps inner empty parts, and GeoPointData reads '' as (0, 0).
    assert distance("0 1;; 0 1") == pytest.approx(2 * QUARTER_EQUATOR_M / 90, rel=1e-12)


def test_a_repeated_point_adds_nothing() -> None:
    # At this latitude sin²+cos² rounds above 1; the distance stays a number (see module).
    point = "-6.788786188997989 12.5"
    assert distance([point, point]) == 0
    assert distance(f"{point}; {point}; -6.788786188997989 12.6") > 0


def test_coordinates_follow_java_number_syntax() -> None:
    assert distance("0 0; 0 1.0d") == distance("0 0; 0 1")
    assert distance("0 0; 0 0x1p0") == distance("0 0; 0 1")
    assert distance("0 0; 0 1e0") == distance("0 0; 0 1")
    assert distance(" 0   0 ; 0  1 ") == distance("0 0; 0 1")


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "1 2 3 4 5",  # at most lat, lon, altitude, accuracy
        "1,5 2",
        "1_0 2",  # Python's float() would take this; Java's parseDouble does not
        "٣ 2",  # nor non-ASCII digits
        "1 2 x",
        ["1 2", "3 4; 5 6"],  # each node of a nodeset is a single geopoint
        ["1 2", "nope"],
    ],
)
def test_malformed_points_are_refused(value: str | list[str]) -> None:
    for func in (distance, area):
        with pytest.raises(ValueError, match="does not represent GPS coordinates"):
            func(value)


# --------------------------------------------------------------------------- digest

# JavaRosa src/test/java/org/javarosa/xpath/expr/DigestTest.java (and XPathEvalTest).
DIGESTS = [
    ("MD5", "hex", "552e21cd4cd9918678e3c1a0df491bc3"),
    ("SHA-1", "hex", "37aa63c77398d954473262e1a0057c1e632eda77"),
    ("SHA-256", "hex", "b94f6f125c79e3a5ffaa826f584c10d52ada669e6762051b826b55776d05aed2"),
    (
        "SHA-384",
        "hex",
        "cc94ec3e9873c0b9a72486442958f671067cdf77b9427416d031440cc62041e2"
        "ee1344498447ec0ced9f7043461bd1f3",
    ),
    (
        "SHA-512",
        "hex",
        "e2732baedca3eac1407828637de1dbca702c3fc9ece16cf536ddb8d6139cd85d"
        "fe7464b8235b29826f608ccf4ac643e29b19c637858a3d8710a59111df42ddb5",
    ),
    ("MD5", "base64", "VS4hzUzZkYZ448Gg30kbww=="),
    ("SHA-1", "base64", "N6pjx3OY2VRHMmLhoAV8HmMu2nc="),
    ("SHA-256", "base64", "uU9vElx546X/qoJvWEwQ1SraZp5nYgUbgmtVd20FrtI="),
    ("SHA-384", "base64", "zJTsPphzwLmnJIZEKVj2cQZ833e5QnQW0DFEDMYgQeLuE0RJhEfsDO2fcENGG9Hz"),
    (
        "SHA-512",
        "base64",
        "4nMrrtyj6sFAeChjfeHbynAsP8ns4Wz1Nt241hOc2F3+dGS4I1spgm9gjM9KxkPimxnGN4WKPYcQpZER30LdtQ==",
    ),
]


@pytest.mark.parametrize(("algorithm", "encoding", "expected"), DIGESTS)
def test_digest_of_some_text(algorithm: str, encoding: str, expected: str) -> None:
    assert digest("some text", algorithm, encoding) == expected


def test_digest_defaults_and_spellings() -> None:
    # XPathEvalTest: the third argument defaults to base64.
    assert digest("some text", "MD5") == "VS4hzUzZkYZ448Gg30kbww=="
    # DigestTest: "MD5 HEX of empty string (baseline from forum feedback)"
    assert digest("", "MD5", "hex") == "d41d8cd98f00b204e9800998ecf8427e"
    # JavaRosa upper-cases the name and drops dashes: these all name SHA-256.
    for spelling in ("sha-256", "SHA256", "sha256", "Sha-2-56"):
        assert digest("some text", spelling, "HEX") == DIGESTS[2][2]


def test_digest_hashes_utf8() -> None:
    # The well-known MD5 of the pangram; and "é" must hash as its two UTF-8 bytes C3 A9
    # (JavaRosa: payload.getBytes("UTF-8")), not as Latin-1 E9 or UTF-16.
    pangram = "The quick brown fox jumps over the lazy dog"
    assert digest(pangram, "MD5", "hex") == "9e107d9d372bb6826bd81d3542a419d6"
    assert digest("é", "MD5", "hex") == hashlib.md5(b"\xc3\xa9").hexdigest()


@pytest.mark.parametrize(
    ("algorithm", "encoding", "message"),
    [
        ("SHA-3", "hex", "unsupported algorithm 'SHA-3'"),
        ("", "hex", "unsupported algorithm ''"),
        ("MD4", "base64", "unsupported algorithm"),
        ("MD5", "base32", "unsupported encoding 'base32'"),
        ("MD5", "", "unsupported encoding"),
    ],
)
def test_digest_refuses_unknown_names(algorithm: str, encoding: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        digest("x", algorithm, encoding)


# --------------------------------------------------------------------------- base64-decode


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        # JavaRosa Base64DecodeTest / XPathFuncExprBase64DecodeTest, ValidValuesTest
        ("SGVsbG8=", "Hello"),
        ("RGFzc2Vs", "Dassel"),
        ("w6nDqMOx", "éèñ"),
        ("8J+lsA==", "🥰"),
        ("AGEAYgBj", "\u0000a\u0000b\u0000c"),
        # InvalidValuesTest: a wrong length gives nothing
        ("a", ""),
        # EncodingDecodeTest
        ("c29tZSB0ZXh0", "some text"),
        ("", ""),
        # our own: separators are skipped, as JavaRosa's decoder does
        ("SGVs\nbG8=", "Hello"),
        (" S G V s b G 8 = ", "Hello"),
        ("SGVsbG8", ""),  # padding is required for the length to work out
        ("8J-lsA==", ""),  # URL-safe '-' is not in the alphabet
        ("0J/RgNC40LLQtdGC", "Привет"),
        ("/w==", "\ufffd"),  # a byte that is not UTF-8
        ("====", ""),
    ],
)
def test_base64_decode(encoded: str, expected: str) -> None:
    assert base64_decode(encoded) == expected


def test_base64_decode_of_only_padding_is_an_error() -> None:
    # JavaRosa computes a negative length here and throws.
    with pytest.raises(ValueError, match="not base64"):
        base64_decode("========")


# --------------------------------------------------------------------------- randomize


# JavaRosa src/test/java/org/javarosa/xform/parse/FisherYatesExamplesTest.java
@pytest.mark.parametrize(
    ("items", "seed", "expected"),
    [
        (list(range(10)), 33, [3, 5, 4, 8, 2, 0, 1, 6, 9, 7]),
        (list(range(10)), 42, [0, 5, 9, 1, 8, 4, 6, 3, 7, 2]),
        (list("ABCDEF"), 42, list("AFCBDE")),
        (list("ABCDEF"), -42, list("EDAFBC")),
        (list("ABCDEF"), 1, list("BFEACD")),
        (list("ABCDEF"), 11111111, list("ACDBFE")),
    ],
)
def test_seeded_randomize_gives_odk_collects_order(
    items: list[object], seed: int, expected: list[object]
) -> None:
    assert randomize(items, seed) == expected


def test_a_decimal_seed_is_truncated_like_a_java_long() -> None:
    # XPathFuncExpr: toNumeric(seed).longValue()
    letters = list("ABCDEF")
    assert randomize(letters, 42.9) == list("AFCBDE")
    assert randomize(letters, -42.9) == list("EDAFBC")
    assert randomize(letters, math.nan) == randomize(letters, 0)
    assert randomize(letters, math.inf) == randomize(letters, 2**63 - 1)
    assert randomize(letters, -math.inf) == randomize(letters, -(2**63))
    # ParkMiller: a seed of 0 (mod 2**31 - 1) starts like any other non-positive one.
    assert randomize(letters, 0) == randomize(letters, 2**31 - 1)


def test_randomize_leaves_its_input_alone() -> None:
    items = list(range(10))
    randomize(items, 33)
    randomize(items)
    assert items == list(range(10))
    assert randomize([], 5) == []
    assert randomize(["only"]) == ["only"]


def test_unseeded_randomize_is_a_fresh_permutation() -> None:
    items = list(range(20))
    orders = {tuple(randomize(items)) for _ in range(5)}
    assert all(sorted(order) == items for order in orders)
    assert len(orders) > 1  # 5 draws of 20! orders: equal only by a miracle


# --------------------------------------------------------------------------- random


def test_random_value_is_in_unit_interval_and_seeded_values_repeat() -> None:
    values = [random_value() for _ in range(200)] + [random_value(str(i)) for i in range(200)]
    assert all(0 <= v < 1 for v in values)
    assert random_value("uuid:abc/q1") == random_value("uuid:abc/q1")
    assert random_value("uuid:abc/q1") != random_value("uuid:abc/q2")
    assert random_value("") == random_value("")
    assert len({random_value() for _ in range(5)}) > 1
