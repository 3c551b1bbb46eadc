"""The pure randomisation engine: permuted blocks of random size, stratified.

Imbalance is in exact integer units, ``count * W - n * w`` (W = sum of weights). Within a
block of multiplier m an arm of weight w holds m*w of the block's m*W slots, so after k
slots of the block its imbalance lies in [-m*w*(W - w), +m*w*(W - w)] (all of its slots
first, or all of the others' first), and it is 0 at every block boundary. The exact,
tight bound at any prefix is therefore ``max(multipliers) * w * (W - w)``.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studies.randomisation import (
    ArmWeight,
    ListSpec,
    Slot,
    generate_list,
    generate_stratum,
    imbalance,
    stratum_key,
    validate_spec,
)

ROOT = Path(__file__).resolve().parents[2]
MODULE_PATH = ROOT / "studies" / "randomisation.py"

ONE_TO_ONE = (ArmWeight("SBRT", 1), ArmWeight("SOC", 1))
TWO_TO_ONE = (ArmWeight("SBRT", 2), ArmWeight("SOC", 1))
THREE_ARMS = (ArmWeight("A", 1), ArmWeight("B", 1), ArmWeight("C", 1))
RATIOS = pytest.mark.parametrize(
    "arms", [ONE_TO_ONE, TWO_TO_ONE, THREE_ARMS], ids=["1:1", "2:1", "1:1:1"]
)


def tight_bound(arms, multipliers) -> dict[str, int]:
    """Largest |count*W - n*w| reachable at any prefix (see the module docstring)."""
    total = sum(arm.weight for arm in arms)
    return {arm.code: max(multipliers) * arm.weight * (total - arm.weight) for arm in arms}


def blocks_of(slots) -> list[list[Slot]]:
    return [list(group) for _, group in itertools.groupby(slots, key=lambda s: s.block)]


def running_imbalances(slots, arms):
    """Yield (prefix length, {arm: count*W - n*w}) after every slot, counted independently."""
    total = sum(arm.weight for arm in arms)
    counts = Counter()
    for n, slot in enumerate(slots, start=1):
        counts[slot.arm] += 1
        yield n, {arm.code: counts[arm.code] * total - n * arm.weight for arm in arms}


# --- block structure -------------------------------------------------------------------


@RATIOS
def test_every_complete_block_holds_exactly_weight_times_multiplier_of_each_arm(arms):
    spec = ListSpec(arms, block_multipliers=(1, 2, 3), slots_per_stratum=600, seed="blocks")
    total = sum(arm.weight for arm in arms)
    blocks = blocks_of(generate_stratum(spec, "07"))
    complete = [block for block in blocks if len(block) == block[0].block_size]
    assert len(complete) >= len(blocks) - 1
    assert {len(block) // total for block in complete} == {1, 2, 3}
    for block in complete:
        multiplier = block[0].block_size // total
        assert block[0].block_size == multiplier * total
        counts = Counter(slot.arm for slot in block)
        assert counts == {arm.code: arm.weight * multiplier for arm in arms}


def test_only_the_last_block_is_cut_short_and_keeps_its_planned_size():
    spec = ListSpec(ONE_TO_ONE, block_multipliers=(2,), slots_per_stratum=5, seed="cut")
    slots = generate_stratum(spec, "07")
    assert [(s.sequence, s.block, s.block_size) for s in slots] == [
        (1, 1, 4),
        (2, 1, 4),
        (3, 1, 4),
        (4, 1, 4),
        (5, 2, 4),
    ]


def test_a_known_seed_gives_the_pinned_list_on_this_python():
    # Guards the reproducibility promise: if a future Python changed random's choice or
    # shuffle, regenerating a stored list from its seed would silently give another list.
    spec = ListSpec(TWO_TO_ONE, block_multipliers=(1, 2), slots_per_stratum=20, seed="known-answer")
    slots = generate_stratum(spec, "07|ecog=0-1")
    letters = {"SBRT": "S", "SOC": "C"}
    assert "".join(letters[slot.arm] for slot in slots) == "CSCSSSSCSSCSSCSSSSCC"
    assert [slot.block_size for slot in slots] == [6] * 6 + [3] * 3 + [6] * 11
    assert [slot.block for slot in slots] == [1] * 6 + [2] * 3 + [3] * 6 + [4] * 5
    assert {slot.stratum for slot in slots} == {"07|ecog=0-1"}
    assert [slot.sequence for slot in slots] == list(range(1, 21))


def test_block_sizes_actually_vary():
    for seed in ("s1", "s2", "s3", "s4", "s5"):
        spec = ListSpec(ONE_TO_ONE, block_multipliers=(1, 2), slots_per_stratum=100, seed=seed)
        assert {slot.block_size for slot in generate_stratum(spec, "07")} == {2, 4}


def test_block_multipliers_are_drawn_about_equally_often():
    spec = ListSpec(ONE_TO_ONE, block_multipliers=(1, 2), slots_per_stratum=3000, seed="freq")
    sizes = Counter(block[0].block_size for block in blocks_of(generate_stratum(spec, "07")))
    share_of_small = sizes[2] / (sizes[2] + sizes[4])
    assert 0.42 < share_of_small < 0.58


def test_blocks_are_shuffled_so_the_first_arm_listed_does_not_always_come_first():
    spec = ListSpec(TWO_TO_ONE, block_multipliers=(1,), slots_per_stratum=3, seed="shuffle")
    firsts = Counter(generate_stratum(spec, f"{site:03d}")[0].arm for site in range(600))
    # Each position of a 3-slot 2:1 block goes to SBRT with probability 2/3.
    assert 340 < firsts["SBRT"] < 460
    assert firsts["SBRT"] + firsts["SOC"] == 600


# --- imbalance --------------------------------------------------------------------------


def test_imbalance_is_count_times_total_weight_minus_n_times_weight():
    slots = [Slot("07", i + 1, arm, 1, 6) for i, arm in enumerate("AABA")]
    assert imbalance(slots, (ArmWeight("A", 2), ArmWeight("B", 1))) == {"A": 1, "B": -1}
    assert imbalance([], (ArmWeight("A", 2), ArmWeight("B", 1))) == {"A": 0, "B": 0}


def test_imbalance_rejects_slots_of_an_arm_it_was_not_given():
    slots = [Slot("07", 1, "C", 1, 2)]
    with pytest.raises(ValueError, match="not given: C"):
        imbalance(slots, (ArmWeight("A", 1), ArmWeight("B", 1)))


# Text a form can carry: any character but lone surrogates (which are not encodable text).
TEXT = st.characters(exclude_categories=("Cs",))


@st.composite
def list_specs(draw):
    weights = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    arms = tuple(ArmWeight(f"arm{i}", weight) for i, weight in enumerate(weights))
    multipliers = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    seed = draw(st.text(TEXT.filter(lambda ch: ch != "|"), max_size=12))
    length = draw(st.integers(1, 2000))
    return ListSpec(arms, multipliers, length, seed)


@settings(max_examples=150, deadline=None, database=None)
@given(spec=list_specs(), stratum=st.text(TEXT, max_size=12))
def test_imbalance_never_exceeds_the_tight_bound_and_is_zero_after_each_complete_block(
    spec, stratum
):
    slots = generate_stratum(spec, stratum)
    assert len(slots) == spec.slots_per_stratum
    assert [slot.sequence for slot in slots] == list(range(1, len(slots) + 1))
    assert {slot.stratum for slot in slots} == {stratum}
    total = sum(arm.weight for arm in spec.arms)
    assert {slot.block_size for slot in slots} <= {m * total for m in spec.block_multipliers}
    blocks = blocks_of(slots)
    assert [block[0].block for block in blocks] == list(range(1, len(blocks) + 1))
    assert all(len(block) == block[0].block_size for block in blocks[:-1])

    bound = tight_bound(spec.arms, spec.block_multipliers)
    boundaries = set(itertools.accumulate(len(block) for block in blocks[:-1]))
    last_boundary = max(boundaries, default=0)
    for n, per_arm in running_imbalances(slots, spec.arms):
        assert sum(per_arm.values()) == 0
        assert all(abs(per_arm[code]) <= bound[code] for code in per_arm), (n, per_arm)
        if n in boundaries:
            assert set(per_arm.values()) == {0}, (n, per_arm)
    assert set(imbalance(slots[:last_boundary], spec.arms).values()) == {0}
    assert imbalance(slots, spec.arms) == per_arm


@pytest.mark.parametrize(
    ("arms", "multipliers"),
    [(ONE_TO_ONE, (1, 2)), (TWO_TO_ONE, (1, 2)), (THREE_ARMS, (1, 2, 3))],
    ids=["1:1", "2:1", "1:1:1"],
)
def test_the_imbalance_bound_is_reached_so_it_is_tight(arms, multipliers):
    spec = ListSpec(arms, multipliers, slots_per_stratum=500, seed="tight")
    bound = tight_bound(arms, multipliers)
    worst = {arm.code: 0 for arm in arms}
    for stratum in (f"{site:02d}" for site in range(10)):
        for _, per_arm in running_imbalances(generate_stratum(spec, stratum), arms):
            worst = {code: max(worst[code], abs(value)) for code, value in per_arm.items()}
    assert worst == bound


@RATIOS
def test_thousands_of_allocations_over_20_strata_keep_the_ratio_within_the_bound(arms):
    spec = ListSpec(arms, block_multipliers=(1, 2), slots_per_stratum=2000, seed="trial")
    strata = [stratum_key(f"{site:02d}", {"ecog": ecog}) for site in range(10) for ecog in "AB"]
    lists = dict(zip(strata, (generate_stratum(spec, s) for s in strata), strict=True))
    enrolment = random.Random(42).choices(strata, weights=range(1, 21), k=6000)
    taken = Counter(enrolment)
    assert max(taken.values()) <= spec.slots_per_stratum
    allocated = [slot for stratum in strata for slot in lists[stratum][: taken[stratum]]]
    assert len(allocated) == 6000

    per_stratum_bound = tight_bound(arms, spec.block_multipliers)
    for stratum in strata:
        per_arm = imbalance(lists[stratum][: taken[stratum]], arms)
        assert all(abs(v) <= per_stratum_bound[code] for code, v in per_arm.items())
    total = sum(arm.weight for arm in arms)
    counts = Counter(slot.arm for slot in allocated)
    for arm in arms:
        deviation = counts[arm.code] * total - 6000 * arm.weight
        assert abs(deviation) <= len(strata) * per_stratum_bound[arm.code]
        assert abs(counts[arm.code] / 6000 - arm.weight / total) < 0.01


# --- reproducibility and independence of strata ---------------------------------------


def test_the_same_seed_gives_an_identical_list():
    spec = ListSpec(TWO_TO_ONE, slots_per_stratum=300, seed="statistician-seed")
    again = ListSpec(TWO_TO_ONE, slots_per_stratum=300, seed="statistician-seed")
    assert generate_list(spec, ["01", "02"]) == generate_list(again, ["01", "02"])


def test_a_different_seed_gives_a_different_list():
    first = generate_stratum(ListSpec(ONE_TO_ONE, slots_per_stratum=300, seed="one"), "01")
    second = generate_stratum(ListSpec(ONE_TO_ONE, slots_per_stratum=300, seed="two"), "01")
    assert [s.arm for s in first] != [s.arm for s in second]


def test_different_strata_get_different_lists():
    spec = ListSpec(ONE_TO_ONE, slots_per_stratum=300, seed="seed")
    assert [s.arm for s in generate_stratum(spec, "01")] != [
        s.arm for s in generate_stratum(spec, "02")
    ]


def test_a_strata_list_does_not_change_when_other_strata_are_added_or_reordered():
    spec = ListSpec(THREE_ARMS, block_multipliers=(1, 2, 3), slots_per_stratum=200, seed="x")
    alone = generate_list(spec, ["02"])
    assert alone == generate_stratum(spec, "02")
    for strata in (["01", "02", "03"], ["03", "02"], ["02", "04", "01"], ["05", "01", "02"]):
        generated = generate_list(spec, strata)
        assert tuple(s for s in generated if s.stratum == "02") == alone
        assert [stratum for stratum, _ in itertools.groupby(s.stratum for s in generated)] == (
            strata
        )


def test_a_stratum_given_twice_is_rejected():
    spec = ListSpec(ONE_TO_ONE, seed="x")
    with pytest.raises(ValueError, match="more than once: 01"):
        generate_list(spec, ["01", "02", "01"])


def test_the_records_are_frozen():
    slot = generate_stratum(ListSpec(ONE_TO_ONE, seed="x"), "01")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        slot.arm = "SOC"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ListSpec(ONE_TO_ONE).seed = "y"  # type: ignore[misc]


# --- stratum keys -----------------------------------------------------------------------


def test_stratum_key_lists_the_site_then_factors_sorted_by_name():
    key = stratum_key("07", {"histology": "LMS", "ecog": "0-1"})
    assert key == "07|ecog=0-1|histology=LMS"
    assert stratum_key("07") == "07"
    assert stratum_key("07", {}) == "07"


def test_stratum_key_is_canonical_whatever_the_factor_order():
    factors = [("ecog", "2"), ("histology", "LMS"), ("oligo", "synchronous")]
    keys = {stratum_key("12", dict(order)) for order in itertools.permutations(factors)}
    assert keys == {"12|ecog=2|histology=LMS|oligo=synchronous"}
    assert stratum_key("12", {"ecog": "0-1"}) != stratum_key("12", {"ecog": "2"})
    assert stratum_key("12", {"ecog": "2"}) != stratum_key("13", {"ecog": "2"})


@pytest.mark.parametrize(
    ("site", "factors", "message"),
    [
        ("", None, "site number is empty"),
        ("07|08", None, "separator"),
        ("07", {"ecog": "0|1"}, "separator"),
        ("07", {"ec|og": "0"}, "separator"),
        ("07", {"a=b": "0"}, "contains '='"),
        ("07", {"": "0"}, "name is empty"),
    ],
)
def test_stratum_key_rejects_parts_that_would_make_labels_ambiguous(site, factors, message):
    with pytest.raises(ValueError, match=message):
        stratum_key(site, factors)


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ListSpec(()), "at least 2 arms, got 0"),
        (ListSpec((ArmWeight("A", 1),)), "at least 2 arms, got 1"),
        (ListSpec((ArmWeight("A", 1), ArmWeight("A", 2))), "unique; duplicated: A"),
        (ListSpec((ArmWeight("A", 1), ArmWeight("B", 0))), "'B': weight must be an integer >= 1"),
        (ListSpec((ArmWeight("A", -1), ArmWeight("B", 1))), "'A': weight must be an integer"),
        (ListSpec((ArmWeight("A", 1.5), ArmWeight("B", 1))), "'A': weight must be an integer"),
        (ListSpec((ArmWeight("", 1), ArmWeight("B", 1))), "non-empty string"),
        (ListSpec(ONE_TO_ONE, block_multipliers=()), "block_multipliers is empty"),
        (ListSpec(ONE_TO_ONE, block_multipliers=(0,)), r"integers >= 1, got \[0\]"),
        (ListSpec(ONE_TO_ONE, block_multipliers=(1, -2)), r"integers >= 1, got \[-2\]"),
        (ListSpec(ONE_TO_ONE, slots_per_stratum=0), "slots_per_stratum must be an integer >= 1"),
        (ListSpec(ONE_TO_ONE, slots_per_stratum=-5), "slots_per_stratum must be an integer"),
        (ListSpec(ONE_TO_ONE, seed="a|b"), "seed must be a string without '|'"),
    ],
)
def test_validate_spec_rejects_each_bad_input_with_a_clear_message(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_spec(spec)
    with pytest.raises(ValueError, match=message):
        generate_stratum(spec, "07")


def test_validate_spec_accepts_a_sound_spec():
    validate_spec(ListSpec(TWO_TO_ONE, block_multipliers=(1, 2, 3), slots_per_stratum=1))


# --- purity -----------------------------------------------------------------------------


def test_the_engine_imports_no_django():
    code = (
        "import sys; import studies.randomisation; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_engine_imports_only_the_standard_library():
    tree = ast.parse(MODULE_PATH.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports could pull in the Django app"
            imported.add(node.module.split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names)


def test_a_seed_that_is_not_valid_text_is_refused():
    with pytest.raises(ValueError, match="valid Unicode"):
        validate_spec(ListSpec(ONE_TO_ONE, seed="\ud800"))
