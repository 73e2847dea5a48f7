"""GPS → jurisdiction on real coordinates, most of them a few kilometres from a border."""

import math

import pytest

from faceledger.policy import jurisdictions_for_gps, resolve_point
from faceledger.records import GeoPoint, Jurisdiction

# (place, lat, lon, expected regions). Coordinates are of town centres or landmarks.
BORDER_POINTS = [
    # Mississippi River: Illinois on the east bank, Missouri on the west.
    ("East St. Louis IL, city hall", 38.6247, -90.1507, ["US-IL", "US"]),
    ("St. Louis MO, Old Courthouse", 38.6257, -90.1892, ["US-MO", "US"]),
    # Indiana-Illinois state line (State Line Avenue, about -87.525).
    ("Gary IN, downtown", 41.6020, -87.3372, ["US-IN", "US"]),
    ("Hammond IN, near the state line", 41.5834, -87.5000, ["US-IN", "US"]),
    ("Calumet City IL, near the state line", 41.6156, -87.5295, ["US-IL", "US"]),
    # Wisconsin-Illinois line (latitude about 42.495).
    ("Kenosha WI, downtown", 42.5847, -87.8212, ["US-WI", "US"]),
    ("Zion IL, downtown", 42.4461, -87.8329, ["US-IL", "US"]),
    ("Winthrop Harbor IL, 2 km south of the line", 42.4789, -87.8237, ["US-IL", "US"]),
    # Mississippi River again, Iowa west, Illinois east.
    ("Dubuque IA, downtown", 42.5006, -90.6646, ["US-IA", "US"]),
    ("East Dubuque IL, downtown", 42.4920, -90.6429, ["US-IL", "US"]),
    # Ohio River: Kentucky south, Illinois north.
    ("Paducah KY, downtown", 37.0834, -88.6000, ["US-KY", "US"]),
    ("Metropolis IL, downtown", 37.1511, -88.7320, ["US-IL", "US"]),
    # TIGER includes state waters: the Great Lakes are divided between the states.
    ("Lake Michigan, 5 km off Chicago", 41.9000, -87.5000, ["US-IL", "US"]),
    ("Lake Michigan, off Gary", 41.7000, -87.3000, ["US-IN", "US"]),
    # Across international borders.
    ("Detroit MI, downtown", 42.3314, -83.0458, ["US-MI", "US"]),
    ("Windsor ON, across the river from Detroit", 42.3149, -83.0364, ["CA"]),
    ("San Ysidro CA, at the Mexican border", 32.5556, -117.0470, ["US-CA", "US"]),
    ("Tijuana, Mexico", 32.5149, -117.0382, ["MX"]),
    ("Geneva, Switzerland (almost surrounded by France)", 46.2044, 6.1432, ["CH"]),
    ("Paris, France", 48.8566, 2.3522, ["FR"]),
    ("Monaco", 43.7384, 7.4246, ["MC"]),
    # A US territory has an ISO 3166-1 code of its own as well.
    ("San Juan, Puerto Rico", 18.4655, -66.1057, ["US-PR", "US", "PR"]),
    # Open sea.
    ("mid Atlantic", 35.0, -40.0, []),
    ("Point Nemo, South Pacific", -48.8767, -123.3933, []),
]


@pytest.mark.parametrize(
    ("place", "lat", "lon", "expected"), BORDER_POINTS, ids=[p[0] for p in BORDER_POINTS]
)
def test_resolve_point_at_borders(place, lat, lon, expected):
    assert resolve_point(lat, lon) == expected


def test_jurisdictions_for_gps_marks_signal_gps():
    east_st_louis = GeoPoint(lat=38.6247, lon=-90.1507)
    assert jurisdictions_for_gps(east_st_louis) == [
        Jurisdiction("US-IL", "gps"),
        Jurisdiction("US", "gps"),
    ]


def test_jurisdictions_for_gps_without_a_tag_or_at_sea():
    assert jurisdictions_for_gps(None) == []
    assert jurisdictions_for_gps(GeoPoint(lat=35.0, lon=-40.0)) == []


@pytest.mark.parametrize(
    ("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (-90.5, 10.0), (math.nan, 0.0), (0.0, math.inf)]
)
def test_resolve_point_rejects_impossible_positions(lat, lon):
    with pytest.raises(ValueError, match="GPS position"):
        resolve_point(lat, lon)
