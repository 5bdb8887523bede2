"""The API documents itself without a network: Swagger UI and ReDoc come from the API, and every
route that needs the database declares the 503 it answers while the database is away."""


async def test_docs_pages_load_their_assets_from_the_api(client) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = (await client.get(page)).text
        assert f"/static/docs/{asset}" in html
        assert "cdn" not in html.lower() and "https://" not in html
        served = await client.get(f"/static/docs/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000
    assert (await client.get("/static/docs/swagger-ui.css")).status_code == 200


async def test_database_routes_declare_their_503(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            # a token is checked against the database, so every route that can answer 401 can 503
            if "401" in operation["responses"]:
                checked += 1
                declared = operation["responses"].get("503")
                assert declared, f"{method.upper()} {path} does not declare its 503"
                assert "Retry-After" in declared["headers"]
    assert checked > 30
    assert "503" in spec["paths"]["/v1/crm/customers"]["post"]["responses"]
    assert "503" not in spec["paths"]["/health/live"]["get"]["responses"]
