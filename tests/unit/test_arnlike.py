"""IAM ArnLike/StringLike matching and exact pattern coverage (permheal.arnlike)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arnlike import (
    arn_like,
    coverage_counterexample,
    covers,
    is_arn_pattern,
    string_like,
    string_like_counterexample,
    string_like_covers,
)
from permheal.errors import ParseError

API = "arn:aws:execute-api:us-east-1:123456789012:abc123"
FN = "arn:aws:lambda:us-east-1:123456789012:function"

# --- reference implementation (deliberately naive) -------------------------------------------------


def ref_glob(pattern: str, value: str) -> bool:
    """Textbook recursive glob: the spec the regex-based matcher must agree with."""
    if not pattern:
        return not value
    if pattern[0] == "*":
        return ref_glob(pattern[1:], value) or (bool(value) and ref_glob(pattern, value[1:]))
    if value and pattern[0] in ("?", value[0]):
        return ref_glob(pattern[1:], value[1:])
    return False


def ref_arn_like(pattern: str, value: str) -> bool:
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6 or p_parts[0] != "arn" or v_parts[0] != "arn":
        return False
    return all(ref_glob(p, v) for p, v in zip(p_parts, v_parts, strict=True))


# --- strategies ------------------------------------------------------------------------------------

HEAD_PATTERN_CHARS = "ab*?"
RESOURCE_PATTERN_CHARS = "ab/:*?"
HEAD_VALUE_CHARS = "abc"  # "c" appears in no pattern: it plays the "any other character"
RESOURCE_VALUE_CHARS = "abc/:"

head_components = st.text(alphabet=HEAD_PATTERN_CHARS, max_size=3)
resource_components = st.text(alphabet=RESOURCE_PATTERN_CHARS, max_size=5)


@st.composite
def arn_patterns(draw: st.DrawFn) -> str:
    head = [draw(head_components) for _ in range(4)]
    return ":".join(["arn", *head, draw(resource_components)])


def _generalize_component(draw: st.DrawFn, component: str) -> str:
    """Make a pattern at least as broad: some chars -> `?`, some substrings -> `*`."""
    out = list(component)
    for _ in range(draw(st.integers(0, 2))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        if draw(st.booleans()):
            if out[i] != "*":
                out[i] = "?"
        else:
            j = draw(st.integers(i, len(out)))
            out[i:j] = ["*"]
    if draw(st.integers(0, 9)) == 0:
        out = ["*"]
    return "".join(out)


@st.composite
def generalizations(draw: st.DrawFn, pattern: str) -> str:
    parts = pattern.split(":", 5)
    return ":".join([parts[0], *(_generalize_component(draw, part) for part in parts[1:])])


@st.composite
def pattern_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """(broad, narrow): half the time broad is a generalization of narrow, so `covers` is often True."""
    narrow = draw(arn_patterns())
    broad = draw(generalizations(narrow)) if draw(st.booleans()) else draw(arn_patterns())
    return broad, narrow


@st.composite
def component_instances(draw: st.DrawFn, component: str, chars: str) -> str:
    """A random word the glob component matches, drawn from ``chars``."""
    out: list[str] = []
    for ch in component:
        if ch == "*":
            out.append(draw(st.text(alphabet=chars, max_size=3)))
        elif ch == "?":
            out.append(draw(st.sampled_from(chars)))
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def instantiations(draw: st.DrawFn, pattern: str) -> str:
    """A random concrete ARN the pattern matches (no colons outside the resource)."""
    parts = pattern.split(":", 5)
    head = [draw(component_instances(part, HEAD_VALUE_CHARS)) for part in parts[:5]]
    return ":".join([*head, draw(component_instances(parts[5], RESOURCE_VALUE_CHARS))])


FAST = settings(max_examples=200, deadline=None)

# --- matching tables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (f"{API}/*/GET/pets/*", f"{API}/prod/GET/pets/{{petId}}", True),
        (f"{API}/*/GET/pets/*", f"{API}/prod/GET/pets/", True),
        (f"{API}/*/GET/pets/*", f"{API}/prod/GET/pets/1/toys/{{toyId}}", True),
        (f"{API}/*/GET/pets/*", f"{API}/prod/GET/pets", False),
        (f"{API}/*/GET/pets/*", f"{API}/prod/POST/pets/{{petId}}", False),
        (f"{API}/*/GET/pets/*", "arn:aws:execute-api:us-east-1:123456789012:zzz999/prod/GET/pets/1", False),
        (f"{API}/prod/GET/pets/{{petId}}", f"{API}/prod/GET/pets/{{petId}}", True),
        (f"{API}/prod/GET/pets/{{petId}}", f"{API}/prod/GET/pets/42", False),
        ("arn:aws:execute-api:*:123456789012:abc123/*", f"{API}/prod/GET/", True),
        ("arn:aws:execute-api:us-*-1:*:abc123/*", f"{API}/prod/GET/", True),
    ],
)
def test_arn_like_matches_execute_api_arns_per_component(pattern: str, value: str, expected: bool) -> None:
    # Given an execute-api source-ARN pattern and a concrete ARN
    # When matched with ArnLike
    # Then the result follows per-component glob semantics
    assert arn_like(pattern, value) is expected


def test_star_in_region_or_account_does_not_span_a_colon() -> None:
    # Given a value whose extra colon shifts the account into the resource
    pattern = "arn:aws:execute-api:*:123456789012:*"
    value = "arn:aws:execute-api:us-east-1:extra:123456789012:abc"
    # When matched component-wise vs as a whole string
    # Then ArnLike rejects it (account is "extra") while a naive StringLike would accept it
    assert arn_like(pattern, value) is False
    assert string_like(pattern, value) is True


def test_star_in_account_cannot_swallow_the_resource_separator() -> None:
    # Given an account wildcard and a resource that must be exactly "x"
    # When the value's resource is "y:x"
    # Then the account star cannot absorb "…:y" to make the resource match
    assert arn_like("arn:aws:sns:us-east-1:*:x", "arn:aws:sns:us-east-1:1:y:x") is False
    assert arn_like("arn:aws:sns:us-east-1:*:x", "arn:aws:sns:us-east-1:1:x") is True


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-1", True),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-12", False),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-", False),
        ("arn:aws:iam::12345678901?:root", "arn:aws:iam::123456789012:root", True),
        ("arn:aws:iam::?:root", "arn:aws:iam:::root", False),
        ("arn:aws:s3:::?", "arn:aws:s3:::/", True),
        ("arn:aws:s3:::?", "arn:aws:s3::::", True),
    ],
)
def test_question_mark_matches_exactly_one_character(pattern: str, value: str, expected: bool) -> None:
    # Given a pattern with `?` / When matched / Then exactly one character is consumed
    assert arn_like(pattern, value) is expected


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        (f"{API}/*/get/*", f"{API}/prod/GET/pets"),
        ("arn:AWS:execute-api:us-east-1:123456789012:*", f"{API}/x"),
        ("arn:aws:execute-api:US-EAST-1:123456789012:*", f"{API}/x"),
        (f"{API}/*", "ARN:aws:execute-api:us-east-1:123456789012:abc123/x"),
    ],
)
def test_matching_is_case_sensitive(pattern: str, value: str) -> None:
    # Given pattern and value differing only in letter case / When matched / Then no match
    assert arn_like(pattern, value) is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        "not-an-arn",
        "arn:aws:s3",
        "arn:aws:s3::",
        "urn:aws:s3:::bucket",
        "arn:aws:s3:::",
        " arn:aws:s3:::b",
    ],
)
def test_non_arn_values_never_match(value: str) -> None:
    # Given a value that is not a six-component arn: string (or differs from the pattern prefix)
    # When matched against a very broad pattern
    # Then it does not match
    assert arn_like("arn:*:*:*:*:?*", value) is False


@pytest.mark.parametrize(
    "pattern", ["*", "", "arn:aws:s3", "urn:aws:s3:::b", "*:aws:s3:::b", "ARN:aws:s3:::b"]
)
def test_non_arn_patterns_match_nothing(pattern: str) -> None:
    # Given a pattern that is not an ARN pattern / When matched / Then nothing matches
    assert is_arn_pattern(pattern) is False
    assert arn_like(pattern, "arn:aws:s3:::b") is False


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (f"{FN}:my-fn", f"{FN}:my-fn", True),
        (f"{FN}:my-fn:*", f"{FN}:my-fn:prod", True),
        (f"{FN}:my-fn:*", f"{FN}:my-fn", False),
        (f"{FN}:*", f"{FN}:my-fn:prod", True),
        (f"{FN}:my-fn", f"{FN}:my-fn:prod", False),
        ("arn:aws:lambda:*:*:function:my-fn", f"{FN}:my-fn", True),
        ("arn:aws:lambda:*:*:*", f"{FN}:a:b:c", True),
    ],
)
def test_resource_component_may_contain_colons(pattern: str, value: str, expected: bool) -> None:
    # Given Lambda ARNs whose resource is "function:name[:qualifier]"
    # When matched / Then stars in the resource may span its colons
    assert arn_like(pattern, value) is expected


def test_is_arn_pattern_needs_six_components_starting_with_arn() -> None:
    # Given candidate patterns / When classified / Then only six-part arn: strings qualify
    assert is_arn_pattern(f"{API}/*")
    assert is_arn_pattern("arn:aws:s3:::")
    assert is_arn_pattern(f"{FN}:x:y")
    assert not is_arn_pattern("arn:aws:s3::")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "a:b:c", True),
        ("a*c", "a:b:c", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("abc", "ABC", False),
        ("a.c", "abc", False),
        ("a+", "aa", False),
        ("[ab]", "a", False),
        ("line*", "line1\nline2", True),
    ],
)
def test_string_like_is_a_whole_string_literal_glob(pattern: str, value: str, expected: bool) -> None:
    # Given a StringLike pattern / When matched / Then only `*` and `?` are special (no regex leaks)
    assert string_like(pattern, value) is expected


# --- coverage tables -------------------------------------------------------------------------------


def _assert_witness(broad: str, narrow: str) -> str:
    witness = coverage_counterexample(broad, narrow)
    assert witness is not None
    assert arn_like(narrow, witness)
    assert not arn_like(broad, witness)
    assert covers(broad, narrow) is False
    return witness


@pytest.mark.parametrize(
    ("broad", "narrow"),
    [
        (f"{API}/*/*/*", f"{API}/prod/GET/pets/*"),
        (f"{API}/*", f"{API}/*/*/*"),
        (f"{API}/*/GET/*", f"{API}/prod/GET/pets/{{petId}}"),
        ("arn:aws:execute-api:*:123456789012:abc123/*", f"{API}/prod/GET/"),
        ("arn:aws:execute-api:*:*:*", f"{API}/*"),
        ("arn:*:*:*:*:*", f"{FN}:my-fn:*"),
        (f"{FN}:*", f"{FN}:my-fn:*"),
        (f"{API}/*?", f"{API}/?*"),
        (f"{API}/?*", f"{API}/*?"),
        (f"{API}/**", f"{API}/*"),
        (f"{API}/*a*b*", f"{API}/*ab*"),
        (f"{API}/*", f"{API}/"),
        ("arn:aws:s3:::?*?", "arn:aws:s3:::??*"),
    ],
)
def test_broad_pattern_covers_narrow_pattern(broad: str, narrow: str) -> None:
    # Given a broad and a narrower pattern / When coverage is decided / Then it is covered
    assert coverage_counterexample(broad, narrow) is None
    assert covers(broad, narrow) is True


@pytest.mark.parametrize(
    ("broad", "narrow"),
    [
        (f"{API}/*/GET/*", f"{API}/*/POST/x"),
        (f"{API}/prod/GET/pets/*", f"{API}/*/*/*"),
        (f"{API}/*/*/*", f"{API}/*"),
        (f"{API}/?", f"{API}/*"),
        (f"{API}/a*", f"{API}/*a"),
        (f"{API}/*a", f"{API}/a*"),
        (f"{API}/*ab*", f"{API}/*a*b*"),
        (f"{API}/*", "arn:aws:execute-api:*:123456789012:abc123/*"),
        (f"{API}/*", "arn:aws:execute-api:us-east-1:*:abc123/*"),
        (f"{FN}:my-fn", f"{FN}:my-fn:*"),
        ("arn:aws:s3:::??*", "arn:aws:s3:::?"),
        ("arn:aws:s3:::abc", "arn:aws:s3:::ABC"),
    ],
)
def test_broad_pattern_does_not_cover_and_the_witness_proves_it(broad: str, narrow: str) -> None:
    # Given patterns where narrow matches something broad does not
    # When a counterexample is requested
    # Then it is a concrete ARN that narrow matches and broad rejects
    witness = _assert_witness(broad, narrow)
    assert "*" not in witness and "?" not in witness


def test_witness_for_region_wildcard_has_no_colon_in_the_region() -> None:
    # Given a narrow pattern wildcarding the region that the broad one fixes
    witness = _assert_witness(f"{API}/*", "arn:aws:execute-api:*:123456789012:abc123/*")
    # When the witness is split like IAM does / Then its region is a colon-free, different region
    region = witness.split(":", 5)[3]
    assert region != "us-east-1"
    assert ":" not in region


def test_equal_patterns_cover_each_other() -> None:
    # Given identical patterns / When coverage is decided both ways / Then both hold
    pattern = f"{API}/*/GET/pets/*"
    assert covers(pattern, pattern) and coverage_counterexample(pattern, pattern) is None


@pytest.mark.parametrize(
    ("broad", "narrow"), [("*", f"{API}/*"), (f"{API}/*", "*"), ("arn:aws:s3::", "arn:aws:s3:::b")]
)
def test_coverage_of_non_arn_patterns_is_an_error_but_covers_says_no(broad: str, narrow: str) -> None:
    # Given a non-ARN pattern on either side
    # When asking for a counterexample / Then ParseError (a ValueError)
    with pytest.raises(ParseError):
        coverage_counterexample(broad, narrow)
    # When asking covers / Then "unknown" is reported as not covered
    assert covers(broad, narrow) is False


@pytest.mark.parametrize(
    ("broad", "narrow", "expected"),
    [
        ("*", "anything:at:all", True),
        ("a*", "a:b", True),
        ("*?", "?*", True),
        ("a*", "*a", False),
        ("?", "", False),
        ("*a*", "*", False),
    ],
)
def test_string_like_coverage_is_exact(broad: str, narrow: str, expected: bool) -> None:
    # Given two StringLike globs / When coverage is decided / Then it is exact, with a witness if not
    assert string_like_covers(broad, narrow) is expected
    witness = string_like_counterexample(broad, narrow)
    if expected:
        assert witness is None
    else:
        assert witness is not None
        assert string_like(narrow, witness) and not string_like(broad, witness)


# --- properties ------------------------------------------------------------------------------------


@FAST
@given(pair=pattern_pairs(), data=st.data())
def test_covers_is_sound_every_instance_of_narrow_matches_broad(
    pair: tuple[str, str], data: st.DataObject
) -> None:
    # Given random patterns P (broad) and Q (narrow) over a small alphabet
    broad, narrow = pair
    # When covers(P, Q) holds
    if not covers(broad, narrow):
        return
    # Then every random instantiation of Q is matched by P
    for _ in range(5):
        value = data.draw(instantiations(narrow))
        assert arn_like(narrow, value)
        assert arn_like(broad, value), (broad, narrow, value)


@FAST
@given(pair=pattern_pairs())
def test_covers_is_complete_a_negative_answer_comes_with_a_real_witness(pair: tuple[str, str]) -> None:
    # Given random patterns P (broad) and Q (narrow)
    broad, narrow = pair
    # When coverage is decided
    witness = coverage_counterexample(broad, narrow)
    # Then a negative answer carries an ARN Q matches and P rejects (by the reference matcher too)
    assert covers(broad, narrow) is (witness is None)
    if witness is not None:
        assert arn_like(narrow, witness) and ref_arn_like(narrow, witness)
        assert not arn_like(broad, witness) and not ref_arn_like(broad, witness)


@FAST
@given(data=st.data())
def test_a_generalization_always_covers_its_original(data: st.DataObject) -> None:
    # Given Q and a pattern P obtained by widening parts of Q into `?` / `*`
    narrow = data.draw(arn_patterns())
    broad = data.draw(generalizations(narrow))
    # When coverage is decided / Then P covers Q (covers is not merely conservative)
    assert covers(broad, narrow), (broad, narrow, coverage_counterexample(broad, narrow))


@FAST
@given(pattern=arn_patterns())
def test_covers_is_reflexive(pattern: str) -> None:
    # Given any ARN pattern / When compared with itself / Then it covers itself
    assert covers(pattern, pattern)


@FAST
@given(data=st.data())
def test_covers_is_transitive(data: st.DataObject) -> None:
    # Given a chain R, Q, P (Q and P each sometimes generalizing the previous one)
    r = data.draw(arn_patterns())
    q = data.draw(st.one_of(generalizations(r), arn_patterns()))
    p = data.draw(st.one_of(generalizations(q), arn_patterns()))
    # When P covers Q and Q covers R / Then P covers R
    if covers(p, q) and covers(q, r):
        assert covers(p, r), (p, q, r)


@st.composite
def pattern_and_value(draw: st.DrawFn) -> tuple[str, str]:
    pattern = draw(arn_patterns())
    value = draw(
        st.one_of(
            instantiations(pattern),
            instantiations(draw(arn_patterns())),
            st.text(alphabet="arnbc/:", max_size=16).map(lambda s: "arn:" + s),
            st.text(alphabet="arnbc/:", max_size=12),
        )
    )
    return pattern, value


@settings(max_examples=400, deadline=None)
@given(case=pattern_and_value())
def test_arn_like_agrees_with_a_brute_force_reference(case: tuple[str, str]) -> None:
    # Given a random pattern and a value (often one of its instances, sometimes junk)
    pattern, value = case
    # When matched by the regex implementation and by the naive recursive reference
    # Then both agree
    assert arn_like(pattern, value) is ref_arn_like(pattern, value)


@FAST
@given(
    pattern=st.text(alphabet="ab:*?", max_size=6),
    value=st.text(alphabet="abc:", max_size=8),
)
def test_string_like_agrees_with_a_brute_force_reference(pattern: str, value: str) -> None:
    # Given random glob and value / When matched both ways / Then they agree
    assert string_like(pattern, value) is ref_glob(pattern, value)


@FAST
@given(
    broad=st.text(alphabet="ab:*?", max_size=5),
    narrow=st.text(alphabet="ab:*?", max_size=5),
    data=st.data(),
)
def test_string_like_coverage_is_sound_and_complete(broad: str, narrow: str, data: st.DataObject) -> None:
    # Given two random whole-string globs
    # When coverage is decided
    witness = string_like_counterexample(broad, narrow)
    if witness is None:
        # Then (covered) every instance of narrow matches broad
        for _ in range(5):
            value = data.draw(component_instances(narrow, "abc:"))
            assert string_like(broad, value), (broad, narrow, value)
    else:
        # Then (not covered) the witness separates them
        assert ref_glob(narrow, witness) and not ref_glob(broad, witness)
