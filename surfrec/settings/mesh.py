"""Settings of the surface stage: extraction, refinement, the open/closed decision, the
fill and trim, and the support measurement (:class:`MeshConfig` and the configs it nests)."""

from __future__ import annotations

from dataclasses import dataclass

from ..validation import SEED, Range
from .declare import check_settings, document, nested_from_dict, setting, to_dict
from .field import UNIT_HALF_EXTENT

#: Extraction methods, component modes, surface modes and refinement k rules.
METHODS = ("auto", "dense", "narrowband")
COMPONENTS = ("all", "largest", "near-data")
SURFACES = ("auto", "closed", "open")
K_RULES = ("sum", "max", "fixed")

#: A fixed neighbour count of the refinement (``--neighbors``): a quadric has 6
#: coefficients; above 1024 one batch of local fits alone needs gigabytes.
NEIGHBORS = Range(6, 1024, integer=True)

_POSITIVE = Range(0, None, lo_open=True)
_NONNEGATIVE = Range(0, None)
_SHARE = Range(0, 1)
_OPEN_SHARE = Range(0, 1, lo_open=True, hi_open=True)


def max_padding(box: float = 1.0) -> float:
    """Largest extraction padding whose box still fits in a fitting box of half-side ``box``."""
    return (box / UNIT_HALF_EXTENT - 1.0) / 2.0


@document
@dataclass(frozen=True)
class SupportConfig:
    """Radii and sampling of the support measurement (:func:`surfrec.surface.support.measure_support`)."""

    cover_radius: float = setting(2.0, range=_POSITIVE,
                                  help="A scan point is covered when the mesh passes within this many spacings s.")
    phantom_radius: float = setting(4.0, range=_POSITIVE,
                                    help="Surface farther than this many spacings from every scan point is phantom.")
    miss_radius: float = setting(5.0, range=_POSITIVE,
                                 help="A scan point farther than this many spacings from the mesh is missed.")
    samples_per_area: float = setting(4.0, range=_POSITIVE,
                                      help="Surface samples per s x s of mesh area for the phantom share and "
                                           "mesh -> scan.")
    min_samples: int = setting(50_000, range=Range(1, None, integer=True), help="Fewest surface samples.")
    max_samples: int = setting(2_000_000, range=Range(1, None, integer=True), help="Most surface samples.")

    def __post_init__(self) -> None:
        check_settings(self)
        if not self.min_samples <= self.max_samples:
            raise ValueError(f"need min_samples <= max_samples, got {self.min_samples}, {self.max_samples}")

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


def _decision_support() -> SupportConfig:
    # the decision needs a share, not a picture: 200k samples give a standard error below 0.0012
    return SupportConfig(max_samples=200_000)


@document
@dataclass(frozen=True)
class SurfaceConfig:
    """The open/closed decision (before the fit and after meshing), the open surface's
    extraction and trim, and the warnings of a poorly supported mesh
    (:mod:`surfrec.surface.decide`)."""

    open_closure: float = setting(0.2, range=Range(0, 1, hi_open=True),
                                  help="Before the fit (auto): the scan is open when the closure of its oriented "
                                       "normals, |sum a n| / sum a (0 for a closed surface, 0.5 for a hemisphere, 1 "
                                       "for a plane), exceeds this.")
    open_phantom: float = setting(0.25, range=_OPEN_SHARE,
                                  help="After meshing (auto): the mesh is opened when more than this share of the "
                                       "closed surface's area is phantom.")
    open_missed: float = setting(0.5, range=_OPEN_SHARE,
                                 help="After meshing (auto): when more than this share of the scan is missed by the "
                                      "closed surface, the open surface is tried too.")
    open_cover_gain: float = setting(0.25, range=_SHARE,
                                     help="After such a try, the open surface is kept only when it covers at least "
                                          "this much larger a share of the scan than the closed one.")
    shell_quantile: float = setting(0.9, range=_OPEN_SHARE,
                                    help="Open surface of a closed fit: the level set F = q, q this quantile of F at "
                                         "the scan points (a thin shell around the sheet).")
    shell_points: int = setting(20_000, range=Range(1, None, integer=True),
                                help="Scan points (a random subset) at which F is evaluated for q.")
    trim_radius: float = setting(2.0, range=_POSITIVE,
                                 help="Open surfaces: drop faces whose vertices all lie farther than this many "
                                      "spacings from every scan point.")
    pretrim_radius: float = setting(6.0, range=_POSITIVE,
                                    help="Open fits, before the refinement: drop faces whose vertices all lie "
                                         "farther than this many spacings from the scan.")
    warn_phantom: float = setting(0.05, range=_SHARE,
                                  help="Warn when more than this share of a closed mesh's area is phantom.")
    warn_missed: float = setting(0.05, range=_SHARE,
                                 help="Warn when more than this share of the scan is missed by the mesh written.")
    seed: int = setting(0, range=SEED, help="Seed of the surface samples and of the shell's point subset.")
    support: SupportConfig = setting(factory=_decision_support, help="Radii and sampling of the measurements.")

    def __post_init__(self) -> None:
        nested_from_dict(self)
        check_settings(self)

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


@document
@dataclass
class RefineConfig:
    """The refinement of the mesh onto the scan (:mod:`surfrec.surface.refine`)."""

    neighbors: int = setting(20, range=Range(6, None, integer=True),
                             help="Scan points in each vertex's local fit on a clean scan (the smallest k).")
    max_neighbors: int = setting(128, range=Range(6, None, integer=True),
                                 help="Largest k: on noisy scans k grows with the noise up to this.")
    noise_neighbors: float = setting(150.0, range=_NONNEGATIVE,
                                     help="The neighbours the noise asks for: noise_neighbors x (noise / spacing)^2 "
                                          "(the height's standard error falls like noise / sqrt(k)).")
    k_rule: str = setting("sum", choices=K_RULES,
                          help="sum: k = neighbors + the neighbours the noise asks for; max: the larger of the two; "
                               "fixed: k = neighbors whatever the noise.")
    iterations: int = setting(2, range=Range(0, None, integer=True), help="Rounds of fit-and-move.")
    robust_iterations: int = setting(1, range=Range(0, None, integer=True),
                                     help="Reweighting rounds by the residual (0: plain weighted least squares).")
    normal_agreement: float = setting(0.5, range=Range(-1, 1),
                                      help="Neighbours whose normal has a cosine below this with the vertex's are "
                                           "left out of its fit (thin parts, sharp edges).")
    min_support: int = setting(6, range=Range(1, None, integer=True),
                               help="Vertices with fewer agreeing neighbours do not move.")
    max_shift: float = setting(4.0, range=_POSITIVE, help="Longest move per round, in grid cells.")
    ridge: float = setting(1e-3, range=_NONNEGATIVE,
                           help="Tikhonov weight on the quadric's linear and quadratic coefficients.")
    max_spacing: float = setting(2.0, range=_POSITIVE,
                                 help="Full moves up to this median point spacing, in grid cells; beyond it the "
                                      "moves shrink linearly to none at taper_spacing (on scans sparser than the "
                                      "mesh grid the fitted field interpolates more smoothly than local fits).")
    taper_spacing: float = setting(3.0, range=_POSITIVE,
                                   help="Median point spacing, in grid cells, from which the refinement is skipped.")
    chunk_size: int = setting(8192, range=Range(1, None, integer=True), help="Vertices per batch at most.")
    chunk_neighbors: int = setting(65536, range=Range(1, None, integer=True),
                                   help="Neighbour rows (vertices x k) per batch at most (keeps a batch in cache).")
    def __post_init__(self) -> None:
        check_settings(self)
        if self.taper_spacing < self.max_spacing:
            raise ValueError(f"RefineConfig.taper_spacing: got {self.taper_spacing}, expected a number "
                             f">= max_spacing ({self.max_spacing})")
        if self.max_neighbors < self.neighbors:
            raise ValueError(f"RefineConfig.max_neighbors: got {self.max_neighbors}, expected an integer "
                             f">= neighbors ({self.neighbors})")

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


@document
@dataclass
class MeshConfig:
    """Everything after the fit: marching cubes, the component filter, the refinement, the
    surface step, the fill or trim, and the support map (:func:`surfrec.run.mesh_stages`)."""

    resolution: int = setting(256, range=Range(16, 2048, integer=True), flag="--resolution", metavar="R",
                              help="Marching-cubes samples along the largest side of the box.")
    level: float | None = setting(None, range=Range(optional=True), flag="--level", metavar="C",
                                  help="Extract the level set F = C (offset surfaces; F is in normalized units where "
                                       "the scan's largest half side is 0.8); None: the fitted level.")
    padding: float = setting(0.05, range=Range(0, max_padding(1.0), note="the box must stay inside the fitting box"),
                             flag="--padding", metavar="P",
                             help="Margin around the scan's box, as a fraction of its largest side.")
    method: str = setting("auto", choices=METHODS, flag="--method",
                          help="dense grid, narrow band refined around the surface, or auto (narrow band above "
                               "narrowband_above).")
    narrowband_above: int = setting(64, range=Range(1, None, integer=True),
                                    help="method auto uses the narrow band above this resolution.")
    band_factor: float = setting(1.0, range=_POSITIVE,
                                 help="Narrow band: a coarse cell is refined when a corner has |F - c| <= this x the "
                                      "cell diagonal (or its corners change sign).")
    components: str = setting("near-data", choices=COMPONENTS, flag="--components",
                              help="Keep all pieces, the largest, or those lying on the scan (near-data drops stray "
                                   "pieces of level set off the scan).")
    near_fraction: float = setting(0.2, range=_SHARE,
                                   help="near-data keeps a piece when at least this share of its vertices lies near "
                                        "the scan.")
    near_cells: float = setting(2.0, range=_NONNEGATIVE,
                                help="A vertex is near the scan within max(near_cells grid cells, near_diagonal x "
                                     "the grid diagonal) of a scan point.")
    near_diagonal: float = setting(0.01, range=_NONNEGATIVE, help="See near_cells.")
    refine: bool = setting(True, flag="--no-refine",
                           help="Move the vertices onto the scan's local surface (at the fitted level only); off, "
                                "the mesh is exactly the level set of F.")
    normals_from_gradient: bool = setting(True, help="Vertex normals from the gradient of F instead of face averages.")
    close_at_box: bool = setting(True, help="Treat the box faces as outside: a level set reaching the box is capped.")
    cap_margin: float = setting(1e-4, range=_POSITIVE,
                                help="F is raised to at least c + cap_margin on the box faces (close_at_box).")
    crossing_check_resolution: int = setting(24, range=Range(2, None, integer=True),
                                             help="Samples per axis of the coarse grid checking that F crosses c.")
    surface: str = setting("auto", choices=SURFACES, flag="--surface",
                           help="closed: a watertight surface; open: only the part of the level set the scan "
                                "supports (fitted with a side at the sheet, then trimmed); auto: open when the scan's "
                                "oriented normals do not close, or when much of a closed fit lies far from the scan.")
    fill: float = setting(2.0, range=Range(0, None, note="0: off"), flag="--fill", metavar="S",
                          help="Closed surfaces: the vertices farther than S scan spacings from every scan point move "
                               "onto the membrane the others span (hole fills without bulges; still watertight).")
    trim: float = setting(0.0, range=Range(0, None, note="0: no trim, a watertight closed surface"), flag="--trim",
                          metavar="S",
                          help="Closed surfaces: drop the faces farther than S scan spacings from every scan point "
                               "(the surface invented over the holes of an incomplete scan; 4 drops what the support "
                               "report counts as phantom); the mesh is then not watertight.")
    neighbors: int = setting(0, range=NEIGHBORS, words={"auto": 0}, flag="--neighbors", metavar="K",
                             help="Scan points in each vertex's local fit of the refinement: fewer follow the points "
                                  "closer, their detail and their noise alike; more average the noise. auto (0): "
                                  "from the scan's estimated noise, which keeps noisy scans closest to their true "
                                  "surface.")
    support_map: bool = setting(True, help="Attach the support map (each vertex's distance to the scan in spacings, "
                                           "the PLY vertex property 'quality') and measure the mesh's cover and "
                                           "phantom.")
    refine_config: RefineConfig = setting(factory=RefineConfig, help="The refinement's settings.")
    surface_config: SurfaceConfig = setting(factory=SurfaceConfig,
                                            help="The surface step's thresholds and the support measurement.")

    def __post_init__(self) -> None:
        nested_from_dict(self)
        check_settings(self)

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


__all__ = ["MeshConfig", "RefineConfig", "SurfaceConfig", "SupportConfig", "METHODS", "COMPONENTS", "SURFACES",
           "K_RULES", "NEIGHBORS", "max_padding"]
