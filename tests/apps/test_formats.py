"""How a manifest declares the formats an input accepts: its own collection, alternatives in
order of preference, and a parameter that picks one (docs/apps.md)."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cure.apps.schemas import AppManifest, AppRead

APPS_DIR = Path(__file__).resolve().parents[2] / "cure" / "apps"


def manifest(app_id: str) -> AppManifest:
    return AppManifest.model_validate(json.loads((APPS_DIR / app_id / "manifest.json").read_text()))


def with_inputs(inputs: list[dict[str, Any]], **parameters: Any) -> dict[str, Any]:
    return {
        "id": "two_sources",
        "title": "t",
        "description": "d",
        "version": "1",
        "image": "i",
        "inputs": inputs,
        "outputs": [{"path": "out.tif"}],
        "parameters": {"type": "object", "properties": parameters},
    }


LST = {
    "role": "lst",
    "collection": "sentinel3-slstr-lst",
    "product_type": "SL_2_LST",
    "format": "slstr",
    "alternatives": [{"format": "landsat", "collection": "landsat-c2-l2", "product_type": "L2SP"}],
    "chosen_by": "lst_source",
}
CHOICE = {"type": "string", "enum": ["auto", "slstr", "landsat"], "default": "auto"}


def test_suhi_takes_slstr_or_landsat_and_lst_source_picks_one() -> None:
    (lst, imperviousness) = manifest("suhi").inputs
    everything = [(f.format, f.collection, f.product_type, f.assets) for f in lst.accepted()]
    assert everything == [
        ("slstr", "sentinel3-slstr-lst", "SL_2_LST", ["lst"]),
        ("landsat", "landsat-c2-l2", "L2SP", ["lst", "qa"]),
    ]
    # auto (the default), or no parameters at all: every format, in order of preference
    assert [f.collection for f in lst.accepted({"lst_source": "auto"})] == [
        "sentinel3-slstr-lst",
        "landsat-c2-l2",
    ]
    assert [f.collection for f in lst.accepted({"lst_source": "landsat"})] == ["landsat-c2-l2"]
    assert [f.collection for f in lst.accepted({"lst_source": "slstr"})] == ["sentinel3-slstr-lst"]
    assert lst.describe() == "lst: sentinel3-slstr-lst (SL_2_LST) or landsat-c2-l2 (L2SP)"
    assert lst.describe({"lst_source": "landsat"}) == "lst: landsat-c2-l2 (L2SP)"
    assert [f.collection for f in imperviousness.accepted({"lst_source": "landsat"})] == [
        "hrl-imperviousness"
    ]
    (reflectance,) = manifest("urban_green").inputs
    assert reflectance.assets == ["red", "nir", "scl"] and reflectance.alternatives == []


def test_the_missing_message_names_the_chosen_collections() -> None:
    from datetime import UTC, datetime

    (lst, _) = manifest("suhi").inputs
    day = datetime(2024, 7, 15, tzinfo=UTC)
    assert lst.missing(day, day, before=None, params={"lst_source": "landsat"}) == (
        "no lst: landsat-c2-l2 (L2SP) product covers the region on 2024-07-15"
    )
    assert lst.missing(day, day, before=None) == (
        "no lst: sentinel3-slstr-lst (SL_2_LST) or landsat-c2-l2 (L2SP) product covers the"
        " region on 2024-07-15"
    )


def test_the_app_listing_shows_every_accepted_collection() -> None:
    read = AppRead.model_validate(manifest("suhi")).model_dump()
    assert read["input_collections"] == [
        "hrl-imperviousness",
        "landsat-c2-l2",
        "sentinel3-slstr-lst",
    ]
    lst = read["inputs"][0]
    assert (lst["format"], lst["assets"], lst["chosen_by"]) == ("slstr", ["lst"], "lst_source")
    assert lst["alternatives"] == [
        {
            "format": "landsat",
            "collection": "landsat-c2-l2",
            "product_type": "L2SP",
            "assets": ["lst", "qa"],
        }
    ]


def test_a_manifest_without_formats_reads_as_before() -> None:
    plain = {"role": "lst", "collection": "sentinel3-slstr-lst", "product_type": "SL_2_LST"}
    (wanted,) = AppManifest.model_validate(with_inputs([plain])).inputs
    assert [(f.format, f.collection, f.assets) for f in wanted.accepted({"x": 1})] == [
        (None, "sentinel3-slstr-lst", [])
    ]
    assert wanted.describe() == "lst: sentinel3-slstr-lst (SL_2_LST)"


@pytest.mark.parametrize(
    ("inputs", "parameters", "problem"),
    [
        ([LST], {}, "chosen_by 'lst_source' is not a string parameter"),
        ([LST], {"lst_source": {"type": "integer"}}, "is not a string parameter"),
        (
            [LST],
            {"lst_source": {"type": "string", "enum": ["auto", "slstr"]}},
            "must hold every format (landsat, slstr)",
        ),
        ([{**LST, "format": None}], {"lst_source": CHOICE}, "needs a format name on each"),
        (
            [{**LST, "alternatives": [{**LST["alternatives"][0], "format": "slstr"}]}],
            {"lst_source": CHOICE},
            "format names must differ",
        ),
        (
            [
                {
                    **LST,
                    "alternatives": [
                        {"collection": "sentinel3-slstr-lst", "product_type": "SL_2_LST"}
                    ],
                    "chosen_by": None,
                }
            ],
            {},
            "a collection and product type appear twice",
        ),
        ([{**LST, "assets": ["lst", "lst"]}], {"lst_source": CHOICE}, "asset keys must differ"),
        ([{**LST, "format": "Landsat 8"}], {"lst_source": CHOICE}, "format must match"),
    ],
)
def test_format_declarations_are_checked(
    inputs: list[dict[str, Any]], parameters: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        AppManifest.model_validate(with_inputs(inputs, **parameters))
    assert problem in str(caught.value)
    assert AppManifest.model_validate(with_inputs([LST], lst_source=CHOICE)).inputs[0].chosen_by
