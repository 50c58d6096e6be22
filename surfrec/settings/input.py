"""Settings of the input stage: inspection of the scan before any fitting (:class:`InputConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..validation import Range
from .declare import check_settings, document, setting, to_dict


@document
@dataclass
class InputConfig:
    """How a scan is checked, cleaned and prepared before the fit
    (:func:`surfrec.input.inspect.inspect_scan`)."""

    merge_tolerance: float = setting(0.1, range=Range(0, 1, hi_open=True, note="0: exact duplicates only"),
                                     help="Points closer to each other than this many point spacings are merged "
                                          "into one (their centroid) before anything else: near duplicates of "
                                          "merged exports, the several returns of one lidar pulse. Exact "
                                          "duplicates are always merged.")
    spacing_samples: int = setting(100_000, range=Range(100, None, integer=True),
                                   help="The point spacing s is the median distance to the nearest other point, "
                                        "measured from at most this many random points against all of them.")
    noise_k: int = setting(20, range=Range(6, None, integer=True),
                           help="Neighbours of the local quadric fits that estimate the scan's noise.")
    noise_samples: int = setting(2000, range=Range(10, None, integer=True),
                                 help="Scan points at which the noise is estimated.")
    remove_stray: bool = setting(False, flag="--remove-stray",
                                 help="Drop the stray points (flying pixels, isolated specks: a point whose "
                                      "stray_k-th neighbour is stray_ratio times farther than its "
                                      "neighbourhood's) before the fit; they are counted and reported either way.")
    stray_k: int = setting(8, range=Range(1, None, integer=True),
                           help="Neighbour rank whose distance measures how isolated a point is.")
    stray_ratio: float = setting(3.0, range=Range(1, None, lo_open=True),
                                 help="A point is stray when its stray_k-th neighbour distance exceeds this many "
                                      "times the median of its stray_reference nearest neighbours'.")
    stray_reference: int = setting(32, range=Range(1, None, integer=True),
                                   help="Neighbours whose median stray_k-th neighbour distance is a point's local "
                                        "reference.")
    outlier_percentile: float = setting(0.1, range=Range(0, 50, hi_open=True),
                                        help="Robust box: the [p, 100 - p] percentile box of the scan. When the "
                                             "exact box is more than outlier_box_ratio times larger, the robust box "
                                             "is used and the few points far outside it are ignored (reported).")
    outlier_box_ratio: float = setting(1.5, range=Range(1, None), help="See outlier_percentile.")
    outlier_margin: float = setting(1.1, range=Range(0, None),
                                    help="Points within this factor of the robust box (capped by the fitting box) "
                                         "are kept when far outliers are dropped.")
    max_data_points: int = setting(200_000, range=Range(1, None, integer=True),
                                   help="Scan points kept with the model (a random subset of a larger scan): "
                                        "the fit, the component filter, the refinement, the surface step and "
                                        "the support map use them; the inspection uses every point.")
    normal_k: int = setting(16, range=Range(3, 1000, integer=True),
                            help="Neighbours of the plane fit of each point's normal (orientation).")
    orient_k: int = setting(10, range=Range(1, 1000, integer=True),
                            help="Neighbours of the graph along which normals are oriented, and of the area "
                                 "weights of the closure.")
    closure_area_clip: float = setting(1.0, range=Range(0, None, lo_open=True),
                                       help="The area weight of a point in the closure is capped at this many times "
                                            "the median.")

    def __post_init__(self) -> None:
        check_settings(self)

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


__all__ = ["InputConfig"]
