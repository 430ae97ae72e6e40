"""Receptive-field grids: every excitatory neuron's input weights drawn as an image.

A neuron's receptive field is its column of input weights: for a whole-digit model
(``weights`` ``[784, N]``) column ``j`` reshaped to 28x28; for a patched model one ``k x k``
image per neuron of each patch group (``weights`` ``[G, P, Ng]``, ``P = k * k``, neuron ``g * Ng
+ j``) or of the one group shared by all positions (``weights`` ``[P, Ng]``).

The grid is one mosaic image (a single ``imshow``, no axes per cell), so 100, 400 and 1,600
neurons draw in about the same time and stay legible: cells are laid out near-square, each cell
carries a small label with the neuron's assigned class (from ``assignments.npz``), and one colour
bar gives the weight scale shared by every cell. Patched models show one block per patch
position, laid out like the positions on the digit. Above ``max_neurons`` cells (default 1,600,
i.e. for 6,400 neurons) an evenly spaced subset in display order is drawn and the title says so.

:func:`run_fields` is the ``fields`` stage: it writes ``fields.png`` (final model) or
``fields-<position>.png`` (a training checkpoint) inside ``run.stage("fields")``.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.io.rundir import LockHolder, RunDir, StageRecord, checkpoint_relpath
from stdp_pipeline.labels import N_CLASSES

IMAGE_PX = 28
#: Most cells drawn in one grid; larger models show an evenly spaced subset.
MAX_NEURONS = 1600
#: Pixels of background between cells, and between patch-position blocks.
_CELL_GAP = 1
_BLOCK_GAP = 4


@dataclass(frozen=True)
class FieldSet:
    """Receptive fields ready to draw.

    ``images`` ``[n, k, k]`` (one per distinct neuron; for a shared patch group ``n = Ng``),
    ``group`` ``[n]`` the patch position of each image (all 0 for whole-digit and shared models),
    ``position_grid`` ``(rows, cols)`` of the patch positions (``(1, 1)`` without patches),
    ``shared`` whether one group serves every position.
    """

    images: np.ndarray
    group: np.ndarray
    position_grid: tuple[int, int]
    shared: bool = False

    @property
    def n(self) -> int:
        return len(self.images)

    @property
    def patch_px(self) -> int:
        return int(self.images.shape[1])


def receptive_fields(weights: np.ndarray, layout: Layout | None = None) -> FieldSet:
    """The :class:`FieldSet` of ``weights`` stored as the network's ``layout`` says (default:
    whole digits, ``[784, N]``; patches: ``[Gw, P, Ng]``, a shared group having ``Gw = 1``).

    Raises :class:`PipelineError` if the shape does not fit the layout (e.g. a model trained
    with another patch size).
    """
    w = np.asarray(weights, np.float64)
    if layout is None:
        layout = Layout.whole_digits(w, IMAGE_PX)
    w3 = layout.weights3(w)  # [Gw, P, Ng]
    k, ng = layout.patch_px, layout.group_size
    images = w3.transpose(0, 2, 1).reshape(-1, k, k)
    side = int(round(math.sqrt(layout.n_groups)))
    grid = (side, side) if layout.patched else (1, 1)
    return FieldSet(images, np.repeat(np.arange(layout.weight_groups), ng), grid, layout.shared)


def field_classes(classes: np.ndarray, rates: np.ndarray | None, fields: FieldSet) -> np.ndarray:
    """The assigned class of each image of ``fields`` (``-1`` silent).

    For a shared patch group the assignment has one entry per (position, neuron); the class
    shown is the one the neuron answers most summed over positions."""
    classes = np.asarray(classes, np.int64)
    if len(classes) == fields.n:
        return classes
    if fields.shared and rates is not None and rates.shape[1] % fields.n == 0:
        pooled = np.asarray(rates, np.float64).reshape(rates.shape[0], -1, fields.n).sum(axis=1)
        return np.where(pooled.sum(axis=0) > 0, pooled.argmax(axis=0), -1)
    raise PipelineError(
        f"assignments.npz names {len(classes)} neurons but the model has {fields.n} fields: "
        "run `stdp-pipeline assign` again for this model"
    )


def display_order(
    fields: FieldSet, classes: np.ndarray | None, sort: str, max_neurons: int = MAX_NEURONS
) -> tuple[np.ndarray, int]:
    """Indices of the images to draw, in drawing order, and the stride of the subset (1 = all).

    ``sort="class"`` orders each patch group by assigned class (silent neurons last, then by
    index); ``"index"`` keeps neuron order. Above ``max_neurons`` an evenly spaced subset of each
    group, in that order, is kept."""
    if sort not in ("class", "index"):
        raise PipelineError(f"--sort {sort}: must be 'class' or 'index'")
    if sort == "class" and classes is None:
        raise PipelineError("--sort class needs the neurons' classes: run `stdp-pipeline assign`")
    n_groups = int(fields.group.max()) + 1
    per_group_cap = max(1, max_neurons // n_groups)
    order, step = [], 1
    for g in range(n_groups):
        idx = np.flatnonzero(fields.group == g)
        if sort == "class":
            key = np.where(classes[idx] < 0, N_CLASSES, classes[idx])  # silent last
            idx = idx[np.lexsort((idx, key))]
        if len(idx) > per_group_cap:
            step = max(step, math.ceil(len(idx) / per_group_cap))
            idx = idx[np.linspace(0, len(idx) - 1, per_group_cap).round().astype(np.int64)]
        order.append(idx)
    return np.concatenate(order), step


def near_square(n: int) -> tuple[int, int]:
    """``(rows, cols)`` of the most nearly square grid with at least ``n`` cells."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def mosaic(
    images: np.ndarray, group: np.ndarray, position_grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D image of ``images`` ``[n, k, k]`` (NaN between cells) and each cell's top-left
    ``(row, col)`` pixel ``[n, 2]``.

    Cells of one patch group form a near-square block; blocks are placed like the patch
    positions on the digit (``position_grid``), with a wider gap between blocks."""
    images = np.asarray(images, np.float64)
    k = images.shape[1]
    group = np.asarray(group)
    groups = np.unique(group)
    most = max(int((group == g).sum()) for g in groups)
    rows, cols = near_square(most)
    cell = k + _CELL_GAP
    block_h, block_w = rows * cell - _CELL_GAP, cols * cell - _CELL_GAP
    pr, pc = position_grid if len(groups) > 1 else (1, 1)
    out = np.full(
        (pr * (block_h + _BLOCK_GAP) - _BLOCK_GAP, pc * (block_w + _BLOCK_GAP) - _BLOCK_GAP),
        np.nan,
    )
    corners = np.zeros((len(images), 2), np.int64)
    for b, g in enumerate(groups):
        br, bc = divmod(int(g) if len(groups) > 1 else b, pc)
        members = np.flatnonzero(group == g)
        for i, m in enumerate(members):
            r, c = divmod(i, cols)
            y = br * (block_h + _BLOCK_GAP) + r * cell
            x = bc * (block_w + _BLOCK_GAP) + c * cell
            out[y : y + k, x : x + k] = images[m]
            corners[m] = (y, x)
    return out, corners


def plot_fields(
    fields: FieldSet,
    path: str | os.PathLike[str],
    title: str,
    *,
    classes: np.ndarray | None = None,
    sort: str = "index",
    max_neurons: int = MAX_NEURONS,
    vmax: float | None = None,
) -> dict:
    """Draw the grid of ``fields`` to ``path`` (PNG, atomically). Returns what was drawn:
    ``{"shown": cells drawn, "total": fields, "step": subset stride, "vmax": colour scale top}``.

    ``classes`` (one per image, ``-1`` silent) labels each cell; ``vmax`` fixes the top of the
    colour scale (default: the largest weight drawn), e.g. to compare checkpoints."""
    from stdp_pipeline.stages.plots import _save, plt

    order, step = display_order(fields, classes, sort, max_neurons)
    shown = fields.images[order]
    image, corners = mosaic(shown, fields.group[order], fields.position_grid)
    top = float(vmax) if vmax is not None else float(np.nanmax(shown)) if shown.size else 1.0
    top = top if top > 0 else 1.0

    h_px, w_px = image.shape
    k = fields.patch_px
    cells_across = w_px / (k + _CELL_GAP)  # about 0.45 inch per cell, within 6 and 18 inches
    width_in = float(np.clip(0.45 * cells_across, 6.0, 18.0))
    height_in = width_in * h_px / w_px
    title_in = 0.2 + 0.018 * width_in * (title.count("\n") + 1)
    fig_w, fig_h = width_in + 1.3, height_in + title_in
    ax = (fig := plt.figure(figsize=(fig_w, fig_h))).add_axes(
        (0.0, 0.0, width_in / fig_w, height_in / fig_h)
    )
    cmap = plt.get_cmap("hot_r").with_extremes(bad="#9aa5b1")  # gaps and empty cells grey
    im = ax.imshow(image, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_axis_off()
    cax = fig.add_axes(
        ((width_in + 0.2) / fig_w, 0.15 * height_in / fig_h, 0.2 / fig_w, 0.7 * height_in / fig_h)
    )
    cbar = fig.colorbar(im, cax=cax)
    cbar.set_label("input weight", fontsize=9)
    cbar.ax.tick_params(labelsize=8)

    if classes is not None:
        cell_pt = width_in * 72 * k / w_px
        size = float(np.clip(cell_pt * 0.32, 4.0, 9.0))
        for (y, x), c in zip(corners, np.asarray(classes)[order], strict=True):
            ax.text(
                x + 0.6,
                y + 0.4,
                str(int(c)) if c >= 0 else "-",
                ha="left",
                va="top",
                fontsize=size,
                color="#0b3d91" if c >= 0 else "#555555",
                fontweight="bold",
                bbox={"boxstyle": "square,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.75},
            )
    ax.set_title(title, fontsize=float(np.clip(0.8 * width_in, 10, 15)), loc="left", pad=6)
    _save(fig, path)
    return {"shown": len(order), "total": fields.n, "step": step, "vmax": top}


def _title(
    run: RunDir,
    config,
    fields: FieldSet,
    drawn: dict,
    *,
    sort: str,
    labelled: bool,
    position: int | None,
    accuracy: float | None,
    total_digits: int | None,
) -> str:
    net = f"{config.network.n_excitatory:,} excitatory neurons"
    if fields.patch_px != IMAGE_PX:
        s = config.encoding
        kind = "one group shared by" if fields.shared else "one group per"
        n_pos = fields.position_grid[0] * fields.position_grid[1]
        net += (
            f", {s.patch_size_px} px patches (stride {s.patch_stride_px}), {kind} {n_pos} positions"
        )
    first = f"{run.name}: {config.name}, {net}"
    if accuracy is not None:
        first += f", test accuracy {100 * accuracy:.1f} % (all activity)"
    if position is None:
        second = "receptive fields (input weights) after training"
    else:
        of = f" of {total_digits:,}" if total_digits else ""
        second = f"receptive fields at checkpoint {position:,}{of} digits"
    if labelled:
        second += "; label = assigned class (- silent)"
        if position is not None:
            second += " of the final model"
    second += "; sorted by class" if sort == "class" else "; in neuron order"
    if drawn["shown"] < drawn["total"]:
        second += (
            f"\nshowing {drawn['shown']:,} of {drawn['total']:,} fields "
            f"(every {drawn['step']}th in this order)"
        )
    return f"{first}\n{second}"


def run_fields(
    run: RunDir,
    *,
    sort: str | None = None,
    checkpoint: int | None = None,
    all_checkpoints: bool = False,
    max_neurons: int = MAX_NEURONS,
) -> list[Path]:
    """The ``fields`` stage: draw the receptive-field grid of the trained model (``fields.png``),
    of the checkpoint at position ``checkpoint`` (``fields-<position>.png``), or of every
    checkpoint and the final model (``all_checkpoints``). Returns the files written.

    ``sort`` is ``"class"`` (default when the run has assignments) or ``"index"``; assignments
    made for an older model (stale, after ``train`` ran again) are refused unless ``sort`` is
    ``"index"``. The final model needs the ``train`` stage; checkpoints only need them to exist:
    they may be drawn while another process trains (the figures are written then, but the stage
    is not recorded)."""
    if checkpoint is not None and all_checkpoints:
        raise PipelineError("give either --checkpoint N or --all-checkpoints, not both")
    if max_neurons < 1:
        raise PipelineError(f"--max-neurons {max_neurons}: must be >= 1")
    config = run.config()
    run.require("encode", for_stage="fields")

    def watching_ok(holder: LockHolder) -> bool:
        """Checkpoints may be drawn while another process trains (nothing recorded then)."""
        only_checkpoints = checkpoint is not None or (
            all_checkpoints and not run.stage_done("train")
        )
        return only_checkpoints and holder.stage in ("train", "run", "sweep")

    with run.lock("fields", busy_ok=watching_ok) as held:
        return _draw_fields(
            run,
            config,
            sort=sort,
            checkpoint=checkpoint,
            all_checkpoints=all_checkpoints,
            max_neurons=max_neurons,
            record=held,
        )


def _draw_fields(
    run: RunDir,
    config: ExperimentConfig,
    *,
    sort: str | None,
    checkpoint: int | None,
    all_checkpoints: bool,
    max_neurons: int,
    record: bool,
) -> list[Path]:
    """The work of :func:`run_fields`; ``record``: record the stage in the manifest (False while
    another process trains and holds the lock: then only the figures are written)."""
    found = run.checkpoints()
    targets: list[tuple[int | None, str]] = []
    if checkpoint is not None:
        if checkpoint not in found:
            avail = ", ".join(str(p) for p in found) if found else "none yet"
            raise PipelineError(
                f"{run} has no checkpoint at position {checkpoint}: available positions are {avail}"
            )
        targets.append((checkpoint, checkpoint_relpath(checkpoint)))
    else:
        trained = run.stage_done("train")
        if all_checkpoints:
            if not found:
                raise PipelineError(
                    f"{run} has no checkpoints: training writes one every "
                    f"train.checkpoint_every = {config.train.checkpoint_every} digits"
                )
            end = run.manifest()["stages"]["train"].get("digits_seen") if trained else None
            # the checkpoint at the end of training is the final model, drawn as fields.png
            targets += [(p, checkpoint_relpath(p)) for p in found if p != end]
        if trained or not all_checkpoints:
            run.require("train", for_stage="fields")
            targets.append((None, "model.npz"))

    labelled = run.stage_done("assign")
    if sort == "class" or (sort is None and record and run.stale_after("assign") is not None):
        # never label the fields with the classes of an older model
        explicit = sort == "class"
        run.require(
            "assign",
            for_stage="fields --sort class" if explicit else "fields",
            hint="" if explicit else " (or give --sort index to draw the fields without classes)",
        )
    assigned = artefacts.load_assignments(run, config, keys=("classes",)) if labelled else None
    sort = sort or ("class" if labelled else "index")
    accuracy = None
    if run.stage_done("evaluate") and run.file("metrics.json").exists():
        accuracy = artefacts.read_metrics(run)["accuracy"].get("all_activity")
    total_digits = None
    if run.stage_done("train"):
        total_digits = run.manifest()["stages"]["train"].get("digits_seen")
    elif found:
        last = artefacts.load_checkpoint(run, max(found), config, resume=False)
        schedule = [last.get(k) for k in ("epochs", "digits_per_epoch")]
        if all(a is not None and a.ndim == 0 and a.dtype.kind in "iu" for a in schedule):
            total_digits = int(schedule[0]) * int(schedule[1])

    layout = Layout.of(config)
    loaded = []
    for position, _rel in targets:
        if position is None:
            state = artefacts.load_model(run, config, keys=("weights",))
        else:
            state = artefacts.load_checkpoint(run, position, config, resume=False)
        loaded.append((position, receptive_fields(state["weights"], layout)))
    classes = None
    if assigned is not None:
        classes = field_classes(assigned["classes"], assigned.get("rates"), loaded[-1][1])
    # one colour scale for a series of checkpoints, so the frames can be compared
    vmax = max(float(f.images.max()) for _, f in loaded) if len(loaded) > 1 else None

    written = []
    stage = run.stage("fields") if record else contextlib.nullcontext(StageRecord(run, "fields"))
    with stage as st:
        for position, fields in loaded:
            name = "fields.png" if position is None else f"fields-{position:09d}.png"
            path = run.file(name)
            order, step = display_order(fields, classes, sort, max_neurons)
            drawn = {"shown": len(order), "total": fields.n, "step": step}
            title = _title(
                run,
                config,
                fields,
                drawn,
                sort=sort,
                labelled=classes is not None,
                position=position,
                accuracy=accuracy if position is None else None,
                total_digits=total_digits,
            )
            plot_fields(
                fields, path, title, classes=classes, sort=sort, max_neurons=max_neurons, vmax=vmax
            )
            st.add_output(name)
            written.append(path)
        st.info.update(
            sort=sort, figures=len(written), fields=drawn["total"], fields_shown=drawn["shown"]
        )
    return written
