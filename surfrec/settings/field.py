"""Settings of the field stage: the network (:class:`ModelConfig`) and its fit (:class:`FitConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..validation import SEED, Range, check_device
from .declare import check_settings, document, nested_from_dict, setting, to_dict

#: Half of the largest side of the scan's box in the fit's normalized frame (the fitting box
#: is [-box, box]^3 with box >= this, which leaves room for the surface to close).
UNIT_HALF_EXTENT = 0.8

#: Activations and input encodings of :class:`ModelConfig`.
ACTIVATIONS = ("softplus", "relu")
ENCODINGS = ("none", "grid")
GRID_OPTIMIZERS = ("sparse_adam", "adam")
ENGINES = ("auto", "fused", "torch")

_POSITIVE = Range(0, None, lo_open=True)
_NONNEGATIVE = Range(0, None)
_SHARE = Range(0, 1)


def _count(lo: int = 1) -> Range:
    return Range(lo, None, integer=True)


@document
@dataclass
class ModelConfig:
    """Architecture of the implicit network F (:class:`surfrec.field.model.ImplicitMLP`)."""

    hidden_dim: int = setting(128, range=_count(), help="Width of every hidden layer.")
    n_hidden_layers: int = setting(4, range=_count(), help="Number of hidden layers.")
    skip_layers: tuple = setting((), help="Hidden-layer indices (0-based, from 1) whose input is concatenated "
                                          "with x (DeepSDF-style skip connections).")
    activation: str = setting("softplus", choices=ACTIVATIONS,
                              help="softplus (smooth: Newton steps need a gradient everywhere) or relu.")
    softplus_beta: float = setting(100.0, range=_POSITIVE,
                                   help="Sharpness beta of Softplus(z) = log(1 + exp(beta z)) / beta; large beta "
                                        "approaches ReLU.")
    init_radius: float = setting(0.5, range=_POSITIVE,
                                 help="Radius r of the sphere F = |x| - r that the geometric initialization gives.")
    encoding: str = setting("none", choices=ENCODINGS,
                            help="Input encoding: none (the MLP reads x) or grid (x and multiresolution grid "
                                 "features).")
    grid_levels: int = setting(4, range=_count(), help="Number of grid levels (encoding grid).")
    grid_min_res: int = setting(16, range=_count(2), help="Vertices per side of the coarsest grid level.")
    grid_max_res: int = setting(128, range=_count(2),
                                help="Vertices per side of the finest grid level (levels spaced geometrically).")
    grid_channels: int = setting(4, range=_count(), help="Features stored per grid vertex and level.")
    grid_bound: float = setting(1.0, range=_POSITIVE,
                                help="The grids cover [-grid_bound, grid_bound]^3 (points outside are clamped).")
    grid_init_std: float = setting(1e-4, range=_NONNEGATIVE,
                                   help="Standard deviation of the initial grid features (near zero keeps the "
                                        "sphere initialization).")

    def __post_init__(self) -> None:
        self.skip_layers = tuple(int(i) for i in self.skip_layers)
        check_settings(self)
        bad = [i for i in self.skip_layers if not 0 < i < self.n_hidden_layers]
        if bad:
            raise ValueError(f"skip_layers must lie in 1..{self.n_hidden_layers - 1}, got {bad}")
        if self.encoding == "grid" and not self.grid_min_res <= self.grid_max_res:
            raise ValueError(f"need 2 <= grid_min_res <= grid_max_res, got {self.grid_min_res}, {self.grid_max_res}")

    def grid_resolutions(self) -> list[int]:
        """Vertices per side of each grid level, coarse to fine."""
        if self.encoding != "grid":
            return []
        if self.grid_levels == 1:
            return [int(self.grid_max_res)]
        ratio = (self.grid_max_res / self.grid_min_res) ** (1.0 / (self.grid_levels - 1))
        return [int(round(self.grid_min_res * ratio**i)) for i in range(self.grid_levels)]

    @property
    def feature_dim(self) -> int:
        """Width of the encoding that enters the MLP besides x."""
        return self.grid_levels * self.grid_channels if self.encoding == "grid" else 0

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


def _default_model() -> ModelConfig:
    return ModelConfig(hidden_dim=64, n_hidden_layers=3)


@document
@dataclass
class FitConfig:
    """The fit of F to a scan: schedule, batches, sampling and loss terms
    (:func:`surfrec.field.train.train_field`)."""

    model: ModelConfig = setting(factory=_default_model, help="Architecture of the implicit network.")
    iterations: int = setting(6000, range=_count(0), flag="--iters", metavar="N",
                              help="Optimization steps: the fit stops after this many (the learning-rate schedule "
                                   "is laid out over them), so the same seed gives the same model at any machine "
                                   "load.")
    time_budget: float | None = setting(None, range=Range(0, None, optional=True, note="0: no limit"),
                                        flag="--time-budget", metavar="S",
                                        help="Opt-in wall-clock cap of the optimization in seconds (None or 0: "
                                             "none). When it binds, the schedule follows the clock, the result "
                                             "depends on the machine's speed and load, and the fit says it was cut "
                                             "short.")
    lr: float = setting(5e-3, range=_POSITIVE, flag="--lr", help="Peak Adam learning rate.")
    grid_lr: float = setting(2e-2, range=_POSITIVE, help="Peak Adam learning rate of a feature grid.")
    grid_decay_weight: float = setting(0.0, range=_NONNEGATIVE,
                                       help="Weight of the mean squared grid features at uniform points of the box "
                                            "(pulls the grid to zero away from the data; 0: off).")
    grid_optimizer: str = setting("sparse_adam", choices=GRID_OPTIMIZERS,
                                  help="sparse_adam updates only the grid rows a step touched; adam all of them.")
    coarse_to_fine: float = setting(0.0, range=_SHARE,
                                    help="Share of the run over which grid levels are switched on, coarse to fine "
                                         "(0: all from the start).")
    lr_final_factor: float = setting(0.05, range=_SHARE,
                                     help="The cosine schedule decays the learning rate to lr times this.")
    warmup_steps: int = setting(20, range=_count(0), help="Linear learning-rate warm-up steps.")
    batch_points: int = setting(1024, range=_count(), help="Scan points per step in the data term.")
    n_samples: int = setting(1024, range=_count(), help="Size of the persistent buffer of level-set samples.")
    refresh_fraction: float = setting(0.1, range=_SHARE,
                                      help="Share of the sample buffer replaced by fresh seeds at every step.")
    keep_far_fraction: float = setting(0.0, range=_SHARE,
                                       help="Share of the sample buffer, the samples farthest from the data, that "
                                            "the refresh never replaces (closed fits; 0: uniform refresh).")
    newton_steps: int = setting(1, range=_count(),
                                help="Newton steps per training step for the warm-started sample buffer (the last "
                                     "takes F from the loss's forward pass).")
    parallel_nearest: bool = setting(True, help="Run the samples' nearest-point query in a helper thread beside the "
                                                "forward pass (the same fit either way). The fused engine "
                                                "searches its grid inside the forward pass instead, on point "
                                                "sets of up to 200k points.")
    init_newton_steps: int = setting(10, range=_count(0), help="Newton steps for the initial sample buffer.")
    seed_k: int = setting(10, range=_count(),
                          help="Seeds around a scan point are Gaussians of sigma = the distance to its seed_k-th "
                               "neighbour.")
    seed_sigma_scale: float = setting(1.0, range=_POSITIVE, help="Multiplier of each seed's sigma.")
    seed_sigma: float | None = setting(None, range=Range(0, None, lo_open=True, optional=True),
                                       help="One fixed sigma for every seed (normalized units) instead of the "
                                            "neighbour distance (studies).")
    uniform_fraction: float = setting(0.2, range=_SHARE,
                                      help="Share of fresh seeds drawn uniformly in the box (they find stray surface).")
    sample_tol: float = setting(1e-2, range=_POSITIVE,
                                help="Samples whose residual |F - c| exceeds this are left out of the loss this step.")
    surface_weight: float = setting(1.0, range=_NONNEGATIVE,
                                    help="Weight of the sample network's distance to the nearest scan points.")
    data_weight: float = setting(1.0, range=_NONNEGATIVE, flag="--data-weight", metavar="W",
                                 help="Weight of mean |F(x) - c| at scan points; higher values pull the surface "
                                      "onto the points harder.")
    distance_weight: float = setting(0.0, range=_NONNEGATIVE,
                                     help="Weight of the distance-sample term (level sets at the distance their "
                                          "level says; 0: off).")
    n_distance_samples: int = setting(4096, range=_count(), help="Points per step of the distance-sample term.")
    distance_near_fraction: float = setting(0.5, range=_SHARE,
                                            help="Share of distance samples drawn near the data; the rest uniform.")
    distance_nn_eps: float = setting(0.3, range=_NONNEGATIVE,
                                     help="Relative tolerance of the distance samples' nearest-point search (a "
                                          "neighbour within (1 + eps) times the true distance is accepted).")
    eikonal_weight: float = setting(0.0, range=_NONNEGATIVE,
                                    help="Weight of (|grad F| - 1)^2 at distance samples (second derivatives: "
                                         "slower; 0: off).")
    slope_weight: float = setting(0.03, range=_NONNEGATIVE,
                                  help="Weight of the slope term: mean (D - 1)^2 with D the central difference of F "
                                       "along its unit gradient; keeps |grad F| near 1 with first derivatives only, "
                                       "so a noisy scan cannot flatten F (0: off).")
    slope_points: int = setting(256, range=_count(), help="Points per step of the slope term.")
    slope_near_fraction: float = setting(0.5, range=_SHARE,
                                         help="Share of the slope term's points drawn near the data; the rest "
                                              "uniform in the box.")
    slope_step: float = setting(0.005, range=_POSITIVE,
                                help="Step h of the slope term's central difference (normalized units).")
    normal_weight: float = setting(0.0, range=_NONNEGATIVE,
                                   help="Weight of the normal-alignment term 1 - |cos(grad F, n)| at scan points, "
                                        "used only when the scan has normals (0: off).")
    side_weight: float = setting(1.0, range=_NONNEGATIVE,
                                 help="Open surfaces: weight of the side term, hinges asking F above c in front of "
                                      "the sheet and below c behind it at scan points with oriented normals, so a "
                                      "single view gets an inside.")
    side_offset: float = setting(1.0, range=_POSITIVE,
                                 help="Offset delta of the side term, in units of each point's seed sigma.")
    side_margin: float = setting(0.1, range=_NONNEGATIVE,
                                 help="Margin m of the side term: the smallest mean slope of F across the sheet "
                                      "it asks for.")
    side_points: int = setting(256, range=_count(), help="Scan points per step in the side term.")
    open_sample_radius: float = setting(3.0, range=_POSITIVE,
                                        help="Open surfaces: the sample term pulls only the level-set samples "
                                             "within this many median seed sigma of the scan whose gradient faces "
                                             "like the nearest point's oriented normal (the sheet).")
    closed_side_weight: float = setting(1.0, range=_NONNEGATIVE,
                                        help="Closed surfaces: weight of the side term at the scan points whose "
                                             "outward normal can be trusted; opens slots and gaps the data say are "
                                             "outside (0: off).")
    closed_side_max_variation: float = setting(0.05, range=_SHARE,
                                               help="The closed side term uses a point when its neighbourhood's "
                                                    "surface variation is below this (0 on a plane, 1/3 for "
                                                    "isotropic scatter).")
    closed_side_min_share: float = setting(0.5, range=_SHARE,
                                           help="The closed side term is off unless at least this share of the "
                                                "points passes closed_side_max_variation (noisy scans).")
    sign_weight: float = setting(1.0, range=_NONNEGATIVE,
                                 help="Closed surfaces: weight of the sign push. A level-set sample far from the "
                                      "data where the scan's winding number is sure of the side (a bubble inside, "
                                      "a web across a hole) is pushed to close that surface (0: off).")
    sign_after: float = setting(0.2, range=_SHARE, help="Share of the steps before the sign push starts.")
    sign_resolution: int = setting(32, range=Range(4, 256, integer=True),
                                   help="Cells per side of the winding-number grid.")
    sign_far: float = setting(4.0, range=_NONNEGATIVE,
                              help="A sample is stray surface farther than this many median seed sigma from the "
                                   "data (and at least one grid cell).")
    sign_inside: float = setting(0.75, range=_NONNEGATIVE,
                                 help="Winding number above which a point counts as inside.")
    sign_outside: float = setting(0.25, range=Range(None, 1),
                                  help="Winding number below which a point counts as outside.")
    level: float = setting(0.0, range=Range(), help="The level c of the surface being fitted.")
    eps: float = setting(1e-8, range=_POSITIVE, help="Guard of max(|grad F|^2, eps) in Newton steps and the sample "
                                                    "network.")
    box: float = setting(1.0, range=Range(UNIT_HALF_EXTENT, None, note=f"the scan fills ±{UNIT_HALF_EXTENT}"),
                         help="Half-side of the fitting box in normalized coordinates.")
    seed: int = setting(0, range=SEED, flag="--seed", help="Seed of every random draw of the fit.")
    device: str = setting("auto", flag="--device", parse=check_device,
                          help="auto (CUDA when available), cpu, cuda or cuda:N.")
    engine: str = setting("auto", choices=ENGINES, flag="--engine",
                          help="auto: the fused CPU engine where it applies (the plain softplus MLP with the "
                               "default loss terms, on the CPU), else torch; fused: require it; torch: the "
                               "reference loop (also CUDA).")
    threads: int | None = setting(None, range=Range(1, None, integer=True, optional=True), flag="--threads",
                                  help="CPU threads of the fit and the meshing (None: the cores available). The "
                                       "fused engine and the meshing give the same bits with any count; the torch "
                                       "loop runs torch on this many threads (1 when None), and its result "
                                       "depends on the count.")
    log_every: int = setting(10, range=_count(), help="Record the history every this many steps.")
    max_seed_points: int = setting(500_000, range=_count(),
                                   help="Seeds and their sigma use a random subset of at most this many scan points.")
    distance_sigma_scale: float = setting(3.0, range=_POSITIVE,
                                          help="Near distance samples are Gaussians of sigma = this times the seed "
                                               "sigma of a scan point.")
    rollback_every: int = setting(50, range=_count(),
                                  help="Steps between snapshots of the last good state (a non-finite loss rolls back "
                                       "to it).")
    max_failures: int = setting(5, range=_count(0),
                                help="Non-finite losses tolerated (each halves the learning rate) before the fit "
                                     "gives up.")
    failure_lr_factor: float = setting(0.5, range=Range(0, 1, lo_open=True),
                                       help="Learning-rate factor after each non-finite loss.")
    schedule_after: int = setting(10, range=_count(0),
                                  help="Steps after which a binding time budget rescales the schedule to the clock.")

    def __post_init__(self) -> None:
        nested_from_dict(self)
        check_settings(self)
        if self.time_budget == 0:
            self.time_budget = None

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return to_dict(self)


__all__ = ["ModelConfig", "FitConfig", "ACTIVATIONS", "ENCODINGS", "UNIT_HALF_EXTENT"]
