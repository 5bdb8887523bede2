"""Storylines: every file in the repository parses, and names demonstration products that the
demo data can serve; widgets that name what the front matter does not are refused."""

import pytest

from cure.apps.registry import get_registry
from cure.demo.rasters import CITIES, DATES
from cure.demo.showcase import demonstrations
from cure.portal.storylines import StorylineError, load_all, parse

FRONT = """---
title: A test
summary: Short.
city: Vienna
products:
  heat: {app: suhi, title: Heat, date: 2024-07-15, region: [16.3, 48.2, 16.4, 48.25]}
---
"""


def inside(region: tuple[float, ...], bbox: tuple[float, ...]) -> bool:
    return (
        bbox[0] <= region[0] < region[2] <= bbox[2] and bbox[1] <= region[1] < region[3] <= bbox[3]
    )


def test_every_storyline_parses_and_its_products_exist_in_the_demo_data(settings) -> None:
    stories = load_all()
    assert len(stories) >= 3
    apps = get_registry(settings)
    for story in stories:
        kinds = {block["type"] for block in story.blocks}
        assert {"html", "map", "chart", "table"} <= kinds, story.slug
        for demo in story.front.products.values():
            apps.get(demo.app).validate_params(demo.params)
            assert demo.date in DATES
            assert any(inside(demo.region, city["bbox"]) for city in CITIES), demo
    assert len(demonstrations()) == 7  # shared products are ordered once


def test_markdown_is_rendered_without_raw_html() -> None:
    story = parse("test", FRONT + "Hello <script>alert(1)</script> **world**\n")
    html = story.blocks[0]["html"]
    assert "<strong>world</strong>" in html and "<script>" not in html


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("```cure-map\nproduct: other\n```\n", "not in the front matter"),
        ("```cure-chart\nproduct: heat\nkind: pie\n```\n", "kind"),
        ("```cure-table\n```\n", "names its products"),
        ("```cure-video\nproduct: heat\n```\n", "unknown widget"),
    ],
)
def test_widgets_must_name_declared_products_and_known_kinds(body: str, problem: str) -> None:
    with pytest.raises(StorylineError, match=problem):
        parse("test", FRONT + body)


def test_front_matter_is_required_and_checked() -> None:
    with pytest.raises(StorylineError, match="front matter"):
        parse("test", "# no front matter\n")
    with pytest.raises(StorylineError, match="region"):
        parse("test", FRONT.replace("[16.3, 48.2, 16.4, 48.25]", "[16.4, 48.2, 16.3, 48.25]"))
