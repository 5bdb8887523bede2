"""roi_stats: runs inside its container. Reads /job/params.json, writes /job/outputs/result.geojson.

Exit 0 on success, 3 when the region cannot be measured (INVALID input), anything else is a failure.
Standard library only, so the image needs nothing but python3.
"""

import argparse
import json
import math
import sys
from datetime import date

JOB = "/job"
EARTH_RADIUS_M = 6371008.8  # mean radius (IUGG)
EXIT_INVALID = 3
AREA_FACTORS = {"m2": 1.0, "ha": 1e-4, "km2": 1e-6}


def ring_area(ring: list[list[float]]) -> float:
    """Signed spherical area of a closed lon/lat ring, in square metres (Chamberlain & Duquette)."""
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in zip(ring, ring[1:]):
        total += math.radians(lon2 - lon1) * (
            2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2))
        )
    return total * EARTH_RADIUS_M**2 / 2


def haversine(a: list[float], b: list[float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def planar_centroid(polygons: list[list[list[list[float]]]]) -> list[float] | None:
    """Area-weighted centroid in lon/lat of polygons given as lists of rings (holes subtract)."""
    weight_sum = cx = cy = 0.0
    for rings in polygons:
        for index, ring in enumerate(rings):
            signed = x = y = 0.0
            for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
                cross = x0 * y1 - x1 * y0
                signed += cross / 2
                x += (x0 + x1) * cross
                y += (y0 + y1) * cross
            if not signed:
                continue
            weight = abs(signed) if index == 0 else -abs(signed)
            cx += x / (6 * signed) * weight
            cy += y / (6 * signed) * weight
            weight_sum += weight
    if weight_sum <= 0:
        return None
    return [cx / weight_sum, cy / weight_sum]


def parse_params(argv: list[str], params: dict) -> dict:
    """params.json's parameters, overridden by the same ones given as --name=value (the
    container contract passes every parameter both ways)."""
    parser = argparse.ArgumentParser(prog="roi_stats")
    parser.add_argument("--area_unit", choices=sorted(AREA_FACTORS))
    parser.add_argument("--precision", type=int, choices=range(10))
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return {**params, **given}


def main() -> int:
    with open(f"{JOB}/params.json") as fh:
        job = json.load(fh)
    params = parse_params(sys.argv[1:], job["params"])
    roi = job["roi"]
    polygons = roi["coordinates"] if roi["type"] == "MultiPolygon" else [roi["coordinates"]]
    print("CURE_PROGRESS 10 measuring the region", flush=True)

    area = perimeter = 0.0
    lons, lats = [], []
    for rings in polygons:
        for index, ring in enumerate(rings):
            ring_m2 = abs(ring_area(ring))
            area += ring_m2 if index == 0 else -ring_m2
            perimeter += sum(haversine(a, b) for a, b in zip(ring, ring[1:]))
            lons += [p[0] for p in ring]
            lats += [p[1] for p in ring]
    print("CURE_PROGRESS 80 locating the centroid", flush=True)
    centroid = planar_centroid(polygons)
    if area <= 0 or centroid is None:
        print("the region of interest has no area", file=sys.stderr)
        return EXIT_INVALID

    digits = params["precision"]
    unit = params["area_unit"]
    days = (date.fromisoformat(job["end_date"]) - date.fromisoformat(job["start_date"])).days + 1
    area_out = round(area * AREA_FACTORS[unit], digits)
    result = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(c, 7) for c in centroid]},
                "properties": {
                    "order_id": job["order_id"],
                    "area": area_out,
                    "area_unit": unit,
                    "perimeter_km": round(perimeter / 1000, digits),
                    "bbox": [min(lons), min(lats), max(lons), max(lats)],
                    "polygons": len(polygons),
                    "start_date": job["start_date"],
                    "end_date": job["end_date"],
                    "days": days,
                },
            }
        ],
    }
    with open(f"{JOB}/outputs/result.geojson", "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"area {area_out} {unit}, {days} day(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
