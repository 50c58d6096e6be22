"""The one configuration of a reconstruction: :class:`ReconstructionConfig` and presets.

``ReconstructionConfig`` holds the fit's hyperparameters and, nested, the network
(:class:`~surfrec.model.ModelConfig`), the extraction and component filter
(:class:`ExtractConfig`) and the refinement (:class:`~surfrec.refine.RefineConfig`).
It is saved with every model file and checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .validation import EXTRACT, FIT, SURFACES, check_choice, check_fields, check_neighbors
from .model import ModelConfig
from .refine import RefineConfig
from .support import SurfaceConfig

#: Extraction methods and component modes (see :func:`surfrec.mesh.extract_mesh_from_field`).
METHODS = ("auto", "dense", "narrowband")
COMPONENTS = ("all", "largest", "near-data")


@dataclass
class ExtractConfig:
    """Marching cubes, the component filter and the box cap of :func:`surfrec.extract_mesh`."""

    resolution: int = 256
    """Grid samples along the box's largest side."""
    level: float | None = None
    """Level c to extract (normalized units); None: the fitted level."""
    padding: float = 0.05
    """Margin around the scan's box, as a fraction of its largest side."""
    method: str = "auto"
    """``dense``, ``narrowband`` or ``auto`` (narrow band above ``narrowband_above``)."""
    narrowband_above: int = 64
    """``method="auto"`` uses the narrow band above this resolution (at 128 it is already
    ~7x faster than dense on 2 cores)."""
    band_factor: float = 1.0
    """Narrow band: a coarse cell is refined when a corner has |F − c| ≤ band_factor × the
    cell diagonal (or its corners change sign). No crossing is missed while |∇F| ≤
    band_factor near the surface; the fitted F is close to a distance (|∇F| ≤ 0.48 measured
    at the bench scans' points), and 1.0 gave the same armadillo mesh as 2.0 from 44% fewer
    field evaluations (benchmarks/EXPERIMENTS.md, speed session 3 §5)."""
    components: str = "near-data"
    """``all``, ``largest`` or ``near-data`` (drop stray pieces of level set off the scan)."""
    near_fraction: float = 0.2
    """``near-data`` keeps a component when at least this share of its vertices lies near
    the data (stray pieces off the scan have ~0%, real parts > 90%)."""
    near_cells: float = 2.0
    """A vertex is near the data within max(near_cells grid cells, near_diagonal × the
    grid diagonal) of an input point."""
    near_diagonal: float = 0.01
    """See ``near_cells``."""
    refine: bool = True
    """Move the vertices onto the input points' local surface (at the fitted level only)."""
    normals_from_gradient: bool = True
    """Vertex normals from ∇F instead of face averages."""
    close_at_box: bool = True
    """Treat the box faces as outside (F > c there): a level set reaching the box is capped."""
    cap_margin: float = 1e-4
    """F is raised to at least c + cap_margin on the box faces when ``close_at_box``."""
    crossing_check_resolution: int = 24
    """Samples per axis of the coarse grid checking that F crosses c in the box."""
    max_data_points: int = 200_000
    """Input points kept with the model (random subset) for the filter, the refinement, the
    surface step and the support map."""
    surface: str = "auto"
    """The surface step (after the refinement, at the fitted level, with data points):
    ``closed`` keeps the watertight level set; ``open`` keeps only the part the data support
    (the shell around the data or the closed mesh, trimmed); ``auto`` is open when more than
    ``surface_config.open_phantom`` of the closed mesh's area lies farther than
    ``surface_config.support.phantom_radius`` point spacings from the data."""
    fill: float = 2.0
    """Closed surfaces: after the surface step, the vertices farther than ``fill`` scan
    spacings s from every scan point (no point constrains them: the network extrapolates
    there) are moved onto the membrane the other vertices span
    (:func:`surfrec.refine.membrane_fill`): hole fills become the smallest surface their
    rim allows instead of a bulge, and the gaps of a randomly sampled scan (about 6% of
    its surface lies farther than 2 s from every point) are bridged by their neighbours.
    The faces and the watertightness do not change. 2 is the support report's cover
    radius (not tuned); same fits, CD-L1 ×1000 abc00994122 0.324 → 0.255, armadillo
    0.247 → 0.237, fandisk 0.102 → 0.102, the gargoyle's mesh → scan 0.869 → 0.779 s
    (benchmarks/EXPERIMENTS.md, session 11). 0: off."""
    trim: float = 0.0
    """Closed surfaces, opt-in: after the surface step, drop the faces whose three vertices
    all lie farther than ``trim`` scan spacings s from every scan point (what a watertight
    surface invents over the holes of an incomplete scan), like Poisson's density trim. The
    mesh is then no longer watertight. 0 (default) keeps it watertight; 4 removes exactly
    what the support report counts as phantom (``support.phantom_radius``). Open surfaces
    are always trimmed (``surface_config.trim_radius``)."""
    neighbors: int = 0
    """Scan points in each vertex's local fit of the refinement (:mod:`surfrec.refine`). 0
    (default): from the scan's estimated noise (``RefineConfig``: 20 + 150·(noise/spacing)²,
    at most 128), which puts the mesh close to the true surface of a noisy scan. A fixed
    count trades that for closeness to the scan's points: fewer neighbours follow the
    points, detail and noise alike (lower scan → mesh distances), more average the noise.
    Measured in benchmarks/RESULTS_REAL.md (session 12): on the SRB gargoyle 14 gives
    scan → mesh 0.0462 instead of 0.0529, below screened Poisson's 0.0477, while on noisy
    scans with a known truth 14 moves the mesh away from it (the demo scan's CD-L1 ×1000
    4.13 → 7.17)."""
    support_map: bool = True
    """Attach the support map (``vertex_attributes["quality"]``: distance from each vertex
    to the nearest data point in units of the data's spacing s, a PLY vertex property) and
    measure the written mesh's cover / phantom (``report["support"]``, warnings)."""
    surface_config: SurfaceConfig = field(default_factory=SurfaceConfig)
    """Thresholds of the surface step and of the support measurement."""

    def __post_init__(self) -> None:
        if isinstance(self.surface_config, dict):
            self.surface_config = SurfaceConfig(**self.surface_config)
        check_fields(self, EXTRACT)  # the ranges live in surfrec.validation (shared with the CLI)
        check_neighbors(f"{type(self).__name__}.neighbors", self.neighbors)
        check_choice(f"{type(self).__name__}.method", self.method, METHODS)
        check_choice(f"{type(self).__name__}.components", self.components, COMPONENTS)
        check_choice(f"{type(self).__name__}.surface", self.surface, SURFACES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExtractConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ExtractConfig keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class ReconstructionConfig:
    """Every setting of a reconstruction: fit, extraction, component filter, refinement.

    Saved with the model file, so ``surfrec mesh model.pt`` replays the steps after the fit
    exactly as ``surfrec fit`` ran them. Presets are named instances (:data:`PRESETS`).
    ``FitConfig`` is the same class (its historical name).
    """

    model: ModelConfig = field(default_factory=lambda: ModelConfig(hidden_dim=64, n_hidden_layers=3))
    """Architecture of the implicit network."""
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    """Marching cubes and the component filter (:func:`surfrec.extract_mesh`)."""
    refine: RefineConfig = field(default_factory=RefineConfig)
    """How :func:`surfrec.extract_mesh` refines the mesh onto the data (kept with the
    model, so a preset describes the whole pipeline)."""
    iterations: int = 6000
    """Optimization steps: the fit stops after this many (the learning-rate schedule is
    laid out over them), so the same seed gives the same model at any machine load."""
    time_budget: float | None = None
    """Opt-in wall-clock cap of the optimization in seconds (None or 0: none, the default).
    When it binds, the schedule follows the clock, the result depends on the machine's
    speed and load, and the fit reports that it was cut short (``FitResult.stopped_by``).
    With :func:`get_config` and ``fit(**overrides)``, where None means "not given", pass 0."""
    lr: float = 5e-3
    """Peak Adam learning rate."""
    grid_lr: float = 2e-2
    """Peak Adam learning rate of the feature grid (``model.encoding="grid"``); grids
    usually want a much higher rate than the MLP."""
    grid_decay_weight: float = 0.0
    """Weight of mean ‖grid features‖² at points drawn uniformly in the box: pulls the grid
    back to zero away from the data, where F then follows the smooth MLP (against stray
    sheets; 0 disables it)."""
    grid_optimizer: str = "sparse_adam"
    """``sparse_adam``: the grid gets sparse gradients and SparseAdam updates only the rows
    a step touched (fast); ``adam``: dense gradients and Adam over the whole grid."""
    coarse_to_fine: float = 0.0
    """Share of the run over which grid levels are switched on, coarse to fine (each
    fades in linearly; 0: all levels from the start)."""
    lr_final_factor: float = 0.05
    """The cosine schedule decays the learning rate to ``lr * lr_final_factor``."""
    warmup_steps: int = 20
    """Linear learning-rate warm-up steps."""
    batch_points: int = 1024
    """Input points per step for the data term."""
    n_samples: int = 1024
    """Size of the persistent buffer of level-set samples."""
    refresh_fraction: float = 0.1
    """Share of the sample buffer replaced by fresh seeds at every step."""
    keep_far_fraction: float = 0.0
    """Share of the sample buffer, the samples farthest from the data at the last step,
    that the refresh never replaces (they keep working on stray surface, e.g. a membrane
    over a hole; 0: the refresh picks uniformly; closed fits only). Off by default: with
    the slope term, 0.3 removed the webs of abc00994122 (seeds 0–4: CD spread 2.4× →
    1.16×) but cost bunny_sparse 7% and the abc00994122 simscan's Chamfer to its truth
    7.8 → 13.3 ×10⁻³; 0.6 tore the surface in session 5 (benchmarks/EXPERIMENTS.md,
    sessions 5 and 8)."""
    newton_steps: int = 1
    """Newton steps per training step for the (warm-started) sample buffer (≥ 1; the last
    takes F at the moved samples from the loss's forward pass)."""
    parallel_nearest: bool = True
    """Run the samples' nearest-point query in a helper thread while the forward pass runs
    (the same fit either way; with ``threads`` = 1 it uses the second core)."""
    init_newton_steps: int = 10
    """Newton steps for the initial buffer."""
    seed_k: int = 10
    """Seeds around an input point have σ = distance to its ``seed_k``-th neighbour."""
    seed_sigma_scale: float = 1.0
    """Multiplier of the per-point σ."""
    seed_sigma: float | None = None
    """One fixed σ for every seed (normalized units) instead of the kNN σ (studies)."""
    uniform_fraction: float = 0.2
    """Share of fresh seeds drawn uniformly in the box (hunts stray surface)."""
    sample_tol: float = 1e-2
    """Samples whose residual |F − c| exceeds this are left out of the loss this step."""
    surface_weight: float = 1.0
    """Weight of the sample-network distance to the nearest input points."""
    data_weight: float = 1.0
    """λ: weight of mean |F(x) − c| on input points."""
    distance_weight: float = 0.0
    """Weight of the distance-sample term (0 disables it)."""
    n_distance_samples: int = 4096
    """Points per step for the distance-sample term."""
    distance_near_fraction: float = 0.5
    """Share of distance samples drawn near the data (σ-Gaussians ×3); the rest uniform."""
    distance_nn_eps: float = 0.3
    """Relative tolerance of the nearest-neighbour search for distance samples (KD-tree
    ``eps``: a neighbour within (1 + eps)× the true distance is accepted). Queries far from
    the data are the slowest part of a step when exact; 0.3 makes them ~3× faster."""
    eikonal_weight: float = 0.0
    """Weight of (‖∇F‖ − 1)² on distance samples (second derivatives: slower)."""
    slope_weight: float = 0.03
    """Weight of the slope term: mean (D − 1)² at ``slope_points`` points near the data and
    in the box, D = (F(x + hn) − F(x − hn)) / 2h the central difference of F along the
    (detached) unit gradient n, h = ``slope_step``: keeps ‖∇ₓF‖ near 1 with first
    derivatives only (0 disables it). Without a term that fixes F's scale, the data term
    λ·mean|F − c| on a noisy scan is lowered by flattening F (the sample terms do not depend
    on F's scale), and a flat F has no level set through thin parts: the abc00994122
    simscan's fin was lost (Chamfer 33 → 7.8 ×10⁻³ with 0.03; 0.1 and 0.3 gave 13 and 19;
    benchmarks/EXPERIMENTS.md, session 8)."""
    slope_points: int = 256
    """Points per step of the slope term."""
    slope_near_fraction: float = 0.5
    """Share of the slope term's points drawn near the data (as the distance samples); the
    rest uniform in the box (1.0 measured no better: EXPERIMENTS.md, session 8)."""
    slope_step: float = 0.005
    """h of the slope term's central difference (normalized units)."""
    normal_weight: float = 0.0
    """Weight of the normal-alignment term, used only when the scan has normals."""
    side_weight: float = 1.0
    """Open surfaces only (``extract.surface="open"``, or ``"auto"`` on a scan whose
    oriented normals do not close, :mod:`surfrec.orient`): weight of the side term, which
    gives the signed field a side at a sheet. A single view has no inside, so a field
    fitted with the data term alone settles in a valley above c and its level set misses
    most of the scan (benchmarks/EXPERIMENTS.md, "Open scans"). The term asks
    F(x + δn) ≥ c + m·δ or F(x − δn) ≤ c − m·δ (one side, drawn at random per point and
    step) at scan points x with oriented normals n (hinges: zero once the sides are right,
    so the surface is still placed by the data and sample terms)."""
    side_offset: float = 1.0
    """δ of the side term, in units of each point's seed σ (distance to its ``seed_k``-th
    neighbour)."""
    side_margin: float = 0.1
    """m of the side term: the smallest mean slope of F across the sheet it asks for (the
    fitted F has |∇F| ≈ 0.2–0.5 at the data)."""
    side_points: int = 256
    """Scan points per step in the side term (each adds a point to the forward pass: 256
    add 12% to the 2048 of a step)."""
    open_sample_radius: float = 3.0
    """Open surfaces only: the sample term pulls only the sheet, the level-set samples
    within this many median seed σ of the scan whose ∇F faces the same way as the nearest
    point's oriented normal. A sheet's inside must be closed off somewhere, behind it or
    away from the data; pulling that part of the level set onto the data (what removes
    stray surface on a closed scan) would remove the inside the side term asks for (a
    wavy sheet fitted without the facing test lost its inside after 600 steps). That
    part is trimmed off after meshing instead."""
    closed_side_weight: float = 1.0
    """Closed surfaces only: weight of the side term (as ``side_weight``: F above c at
    x + δn, below c at x − δn, hinges) at the scan points whose outward normal (the sign
    push's orientation) can be trusted. It opens what the data say is outside, where the
    pull alone leaves the level set across it: the slots and gaps of a CAD part a few point
    spacings wide, filled by some seeds and not others (abc00994122 seeds 0–3: CD×1000
    0.273 / 0.559 / 0.319 / 0.645 without it, 0.324 / 0.259 / 0.313 / 0.210 with 1.0;
    3.0 fixed abc00994122 too but cost bunny_sparse 33%: benchmarks/EXPERIMENTS.md,
    session 9). 0: off."""
    closed_side_max_variation: float = 0.05
    """The closed side term uses a point only when its neighbourhood's surface variation
    λ₀/(λ₀+λ₁+λ₂) (``normal_k`` neighbours; 0 on a plane, 1/3 for isotropic scatter) is
    below this: a sharp edge's or a noisy point's normal is not trusted."""
    closed_side_min_share: float = 0.5
    """The closed side term is off unless at least this share of the points passes
    ``closed_side_max_variation`` (on a noisy scan the orientation cannot be trusted
    anywhere, and a few passing points steered the fit wrong)."""
    sign_weight: float = 1.0
    """Closed surfaces only: weight of the sign push against the sample term's pull. The
    oriented normals (:mod:`surfrec.orient`, outward per piece) give the scan's winding
    number; a level-set sample farther than ``sign_far`` from the data where it is sure of
    the side (a bubble inside the object, a web across a hole) is pushed to close that
    surface instead of being pulled to the nearest data point, which would grow a bubble
    towards the data (:class:`surfrec.fitting.SignData`). 0: off (and, with
    ``closed_side_weight`` 0 too, no orientation on ``--surface closed``)."""
    sign_after: float = 0.2
    """Share of the steps before the sign push starts: until the level set has reached the
    data, all of it is far from the data (the initial sphere), and pushing it crushed the
    field (abc00994122: 15 usable samples of 1024 after 85 steps)."""
    sign_resolution: int = 32
    """Cells per side of the winding-number grid (its nodes: (R+1)³ evaluations against one
    dipole per occupied cell)."""
    sign_far: float = 4.0
    """A sample is stray surface farther than this many median seed σ from the data (and at
    least one grid cell, where the lumped winding number is exact enough)."""
    sign_inside: float = 0.75
    """Winding number above which a point counts as inside (≈ 1 inside, ≈ 0 outside)."""
    sign_outside: float = 0.25
    """Winding number below which a point counts as outside."""
    level: float = 0.0
    """The level c of the surface being fitted."""
    eps: float = 1e-8
    """Guard of max(‖∇F‖², ε) in Newton steps and the sample network."""
    box: float = 1.0
    """Half-side of the fitting box in normalized coordinates (the scan fills ±0.8)."""
    seed: int = 0
    """Seed of every random draw (reproducible fits on the same device)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    threads: int | None = 1
    """CPU threads for torch's operations during the fit. Fixed (not the machine's core
    count) because the result depends on it; 1 is the default because a step's matrices are
    small: 2 threads were 1.35x faster on 2 quiet cores but 7x slower with another process
    busy on one of them, and 1 lets ``batch --workers 2`` use both cores (benchmarks/
    EXPERIMENTS.md, session 4). None: torch's default (the machine's cores)."""
    log_every: int = 10
    """Record the history every this many steps."""
    max_seed_points: int = 500_000
    """Seeds and σ use a random subset of at most this many input points (huge scans)."""
    remove_stray: bool = False
    """Drop the stray points :func:`surfrec.support.find_outliers` flags (flying pixels,
    isolated specks: a point whose 8th-neighbour distance is 3x its neighbourhood's) before
    the fit; they are then neither fitted nor used by the support map. Off by default: the
    count is reported either way (``surfrec fit`` prints it), and the near-data filter and
    the trimming already keep single strays from making surface (benchmarks/RESULTS_REAL.md,
    stray points)."""
    outlier_percentile: float = 0.1
    """Robust box: the [p, 100 − p] percentile box of the scan. When the exact box is more
    than ``outlier_box_ratio`` times larger, the robust box is used and the few points
    left outside the fitting box are ignored as far outliers (reported)."""
    outlier_box_ratio: float = 1.5
    """See ``outlier_percentile``."""
    outlier_margin: float = 1.1
    """Points within this factor of the robust box (in normalized units, capped by
    ``box``) are kept when far outliers are dropped."""
    distance_sigma_scale: float = 3.0
    """Near distance samples are Gaussians of σ = this × the seed σ of an input point."""
    rollback_every: int = 50
    """Steps between snapshots of the last good state (a non-finite loss rolls back to it)."""
    max_failures: int = 5
    """Non-finite losses tolerated (each halves the learning rate) before the fit gives up."""
    failure_lr_factor: float = 0.5
    """Learning-rate factor after each non-finite loss."""
    schedule_after: int = 10
    """Steps after which a binding time budget rescales the schedule to the clock."""

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if isinstance(self.refine, dict):
            self.refine = RefineConfig(**self.refine)
        if isinstance(self.extract, dict):
            self.extract = ExtractConfig(**self.extract)
        check_fields(self, FIT)  # the ranges live in surfrec.validation (shared with the CLI)
        check_choice(f"{type(self).__name__}.grid_optimizer", self.grid_optimizer, ("sparse_adam", "adam"))
        if self.time_budget == 0:
            self.time_budget = None

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["refine"] = self.refine.to_dict()
        d["extract"] = self.extract.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ReconstructionConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing ones take their
        defaults (files written before ``extract`` existed replay the defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ReconstructionConfig keys: {sorted(unknown)}")
        d = dict(d)
        if "model" in d and isinstance(d["model"], dict):
            d["model"] = ModelConfig(**d["model"])
        if "refine" in d and isinstance(d["refine"], dict):
            d["refine"] = RefineConfig(**d["refine"])
        if "extract" in d and isinstance(d["extract"], dict):
            d["extract"] = ExtractConfig.from_dict(d["extract"])
        return cls(**d)


#: The historical name of :class:`ReconstructionConfig` (same class).
FitConfig = ReconstructionConfig


#: Named configurations, tuned for 2 CPU cores and ~50k points (benchmarks/RESULTS.md).
#: Each stops on its step count (the same mesh for the same seed at any machine load);
#: a wall-clock ``time_budget`` is opt-in only.
PRESETS: dict[str, FitConfig] = {
    # the field defaults of FitConfig are the default preset: 6000 steps on one thread,
    # then meshing and the refinement onto the data (times: benchmarks/RESULTS.md)
    "default": FitConfig(),
    # 1200 steps; the refinement's neighbourhoods
    # are capped at 48 points (noisy scans: time). lr 1e-2 was tried here: one armadillo
    # seed in three blew up (CD 3.6), see benchmarks/EXPERIMENTS.md round 5
    "fast": FitConfig(iterations=1200, refine=RefineConfig(max_neighbors=48)),
    # a 4x128 MLP with 2x larger batches: ~25 steps/s on 2 cores, a few minutes per scan
    "quality": FitConfig(
        model=ModelConfig(hidden_dim=128, n_hidden_layers=4),
        iterations=6000, time_budget=None, lr=3e-3, batch_points=2048, n_samples=2048,
    ),
}


def get_config(preset: str | ReconstructionConfig | None = "default", **overrides: Any) -> ReconstructionConfig:
    """A preset (by name) or config, with fields replaced by ``overrides`` (None ignored)."""
    if preset is None:
        preset = "default"
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        cfg = copy.deepcopy(PRESETS[preset])
    elif isinstance(preset, ReconstructionConfig):
        cfg = copy.deepcopy(preset)
    else:
        raise TypeError(f"preset must be a name or a ReconstructionConfig, got {type(preset).__name__}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **overrides) if overrides else cfg
