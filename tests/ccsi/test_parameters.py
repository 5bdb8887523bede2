"""A bad search parameter answers 400 in the project's error shape, naming the parameter."""

import pytest

BAD = [
    ("bbox", "1,2,3"),
    ("bbox", "1,2,3,4,5"),
    ("bbox", "a,b,c,d"),
    ("bbox", "10,0,5,1"),
    ("bbox", "0,10,1,5"),
    ("bbox", "0,0,181,1"),
    ("bbox", "0,-91,1,1"),
    ("bbox", "nan,0,1,1"),
    ("timeStart", "yesterday"),
    ("timeStart", "2024-13-01"),
    ("timeEnd", "2024-07-01T25:00:00Z"),
    ("maxRecords", "0"),
    ("maxRecords", "10000"),
    ("maxRecords", "ten"),
    ("maxRecords", "-1"),
    ("startIndex", "0"),
    ("startIndex", "1.5"),
    ("geometry", "POLYGON((0 0, 1 1))"),
    ("geometry", "not wkt at all"),
    ("geometry", "POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))"),  # self-intersecting
    ("geometry", "POINT (200 0)"),
    ("geometry", "POINT EMPTY"),
    ("geometry", "POINT (1e400 0)"),
    ("geometry", "POINT (" + "1" * 30000 + " 0)"),
    ("format", "xml"),
    ("collection", "../etc"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
async def test_bad_parameter_is_a_400_naming_it(client, name, value) -> None:
    response = await client.get("/v1/ccsi/search", params={name: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "InvalidParameter"
    assert body["detail"][0]["loc"] == ["query", name]
    assert body["detail"][0]["msg"]


async def test_time_end_before_time_start_names_time_end(client) -> None:
    response = await client.get(
        "/v1/ccsi/search", params={"timeStart": "2024-07-02", "timeEnd": "2024-07-01T12:00:00Z"}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["query", "timeEnd"]


async def test_a_parameter_given_twice_is_refused(client) -> None:
    response = await client.get("/v1/ccsi/search?maxRecords=5&maxRecords=6")
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["query", "maxRecords"]


async def test_a_bad_collection_in_the_path_names_it(client) -> None:
    response = await client.get("/v1/ccsi/-bad!/search")
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["path", "collection"]


async def test_good_forms_are_accepted_and_unknown_parameters_ignored(client) -> None:
    for params in (
        {"bbox": "16.2,48.1,16.5,48.4", "timeStart": "2024-07-01", "timeEnd": "2024-07-31"},
        {"bbox": "16,48,16,48"},  # a point
        {"timeStart": "2024-07-01T10:00:00+02:00", "timeEnd": "2024-07-01T12:00:00"},
        {"geometry": "POINT (16.3 48.2)", "maxRecords": "500", "startIndex": "1"},
        {"geometry": "POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1))", "format": "atom"},
        {"bbox": "", "timeStart": "", "productType": ""},  # unfilled OpenSearch template
        {"searchTerms": "anything", "count": "3", "sortBy": "x"},
    ):
        response = await client.get("/v1/ccsi/search", params=params)
        assert response.status_code == 200, (params, response.text)
