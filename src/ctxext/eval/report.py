"""Results JSON -> Markdown tables and PNG plots. Works from the JSON alone (``ctxext plot``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CtxextError
from ..values import is_rate, is_whole

RULER_DODGE = 0.04  # octaves between neighbouring methods' markers on the length axis
RULER_COLUMNS = 4  # panels per row of a RULER figure
MAIN_METRIC = {"ppl": "ppl", "passkey": "accuracy", "ruler": "average"}  # each task's registry entry


def load_results(path: str | Path) -> dict:
    """A results file, its shape checked (:func:`check_results`) so that plotting or resuming it cannot fail later."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CtxextError(f"cannot read results {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or "results" not in data:
        raise CtxextError(f"{path} is not a ctxext results file (no 'results')")
    check_results(data, path)
    return data


def check_results(data: dict, path: str | Path) -> None:
    """Raise one CtxextError naming the first field that is not what ``markdown`` and ``plot`` read:
    ``results[task][method][length][metric]``, lengths in tokens for ppl and passkey, their main metric a number."""

    def wrong(field: str, why: str):
        raise CtxextError(f"{path}: {field} {why}")

    results = data["results"]
    if not isinstance(results, dict) or not results:
        wrong("results", "must be an object of tasks")
    original = data.get("original_context")
    if original is not None and not (is_whole(original) and original > 0):
        wrong("original_context", f"must be a positive whole number, not {original!r}")
    if not isinstance(data.get("model", ""), str):
        wrong("model", "must be a path")
    finished = data.get("finished", [])
    if not (isinstance(finished, list) and all(isinstance(label, str) for label in finished)):
        wrong("finished", "must be a list of method labels")
    for task, by_method in results.items():
        if not isinstance(by_method, dict) or not by_method:
            wrong(f"results.{task}", "must be an object of methods")
        for method, rows in by_method.items():
            if not isinstance(rows, dict) or not rows:
                wrong(f"results.{task}.{method}", "must be an object of lengths")
            for length, metrics in rows.items():
                field = f"results.{task}.{method}.{length}"
                if task in MAIN_METRIC and not (length.isdigit() and int(length) > 0):
                    wrong(field, "must be named by a length in tokens")
                if not isinstance(metrics, dict):
                    wrong(field, "must be an object of metrics")
                _check_metrics(task, metrics, field, wrong)


def _check_metrics(task: str, metrics: dict, field: str, wrong) -> None:
    main = MAIN_METRIC.get(task)
    if main is None:
        return
    value = metrics.get(main)
    if not (isinstance(value, int | float) and not isinstance(value, bool)) or value <= 0 and task == "ppl":
        wrong(f"{field}.{main}", f"must be a {'positive ' if task == 'ppl' else ''}number, not {value!r}")
    if task == "passkey":
        if not 0 <= value <= 1:
            wrong(f"{field}.accuracy", f"must lie between 0 and 1, not {value!r}")
        depths, trials = metrics.get("depths"), metrics.get("trials")
        if not isinstance(depths, dict) or not all(is_rate(v) for v in depths.values()):
            wrong(f"{field}.depths", "must map depths to accuracies")
        if not is_whole(trials):
            wrong(f"{field}.trials", f"must be a whole number, not {trials!r}")
    if task == "ruler":
        for name, cell in (metrics.get("tasks") or {}).items():
            _check_ruler_cell(cell, f"{field}.tasks.{name}", wrong)


def _is_share(value) -> bool:
    return is_rate(value) and 0 <= value <= 1


def _check_ruler_cell(cell, field: str, wrong) -> None:
    """What --resume reads of a finished RULER cell: each sample's score and the cell's seconds."""
    if not isinstance(cell, dict) or "outputs" not in cell:
        return
    outputs, seconds = cell["outputs"], cell.get("seconds")
    if not (isinstance(outputs, list) and all(isinstance(o, dict) and _is_share(o.get("score")) for o in outputs)):
        wrong(f"{field}.outputs", "must be a list of samples, each with a score between 0 and 1")
    if not (isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0):
        wrong(f"{field}.seconds", f"must be a number of seconds, not {seconds!r}")


def _metrics(task: str, rows: dict) -> list[str]:
    if task in MAIN_METRIC:
        return [MAIN_METRIC[task]]
    keys = []
    for per_length in rows.values():
        for metrics in per_length.values():
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and key not in keys and key not in ("tokens", "texts"):
                    keys.append(key)
    return keys


def markdown(results: dict) -> str:
    """One table per task and metric: methods as rows, lengths as columns; a share with its 95% interval."""
    out = []
    for task, by_method in results["results"].items():
        lengths = sorted({str(length) for rows in by_method.values() for length in rows}, key=_length_key)
        for metric in _metrics(task, by_method):
            out.append(f"\n{task}: {metric}\n")
            out.append("| method | " + " | ".join(lengths) + " |")
            out.append("|---|" + "---|" * len(lengths))
            for method, rows in by_method.items():
                cells = []
                for length in lengths:
                    row = rows.get(length, rows.get(_as_int(length), {}))
                    value = row.get(metric)
                    interval = row.get(f"{metric}_ci95") or (
                        row.get("ci95") if metric == MAIN_METRIC.get(task) else None
                    )
                    shown = "-" if value is None else f"{value:.4g}"
                    cells.append(
                        shown + (f" [{interval[0]:.3g}, {interval[1]:.3g}]" if value is not None and interval else "")
                    )
                out.append(f"| {method} | " + " | ".join(cells) + " |")
        out += _subtask_tables(by_method)
    return "\n".join(out).lstrip("\n")


def summary_lines(results: dict) -> list[str]:
    """A task's summary across methods (RULER: each method's effective length), one line a method."""
    summary = results.get("summary")
    if not summary or "effective_length" not in summary:
        return []
    relative = summary.get("relative_threshold")
    lines = [
        f"\neffective length: the longest length up to which the average stays >= {summary['threshold']:g}"
        + (f" (absolute) or >= {relative:.1f} (0.9 x native at its window, relative)" if relative else "")
    ]
    for method, found in summary["effective_length"].items():
        lines.append(f"  {method}: absolute {found['absolute'] or '-'}, relative {found['relative'] or '-'}")
    return lines


def _subtask_tables(by_method: dict) -> list[str]:
    out = []
    for method, rows in by_method.items():
        lengths = sorted(rows, key=_length_key)
        names = list(dict.fromkeys(name for row in rows.values() for name in row.get("tasks", {})))
        if not names:
            continue
        out.append(f"\n{method}: accuracy (%) [95% interval]\n")
        out.append("| subtask | " + " | ".join(str(n) for n in lengths) + " |")
        out.append("|---|" + "---|" * len(lengths))
        for name in names:
            cells = []
            for length in lengths:
                cell = rows[length].get("tasks", {}).get(name)
                cells.append(
                    "-" if cell is None else f"{cell['accuracy']:.0f} [{cell['ci95'][0]:.0f}, {cell['ci95'][1]:.0f}]"
                )
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _length_key(value: str):
    return (0, int(value)) if str(value).isdigit() else (1, str(value))


def check_plot_path(path: str | Path) -> None:
    """Refuse, before any work, a plot name whose format matplotlib cannot write."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise CtxextError(f"cannot write a plot named {Path(path).name}: end it in .png, .svg or .pdf")


def plot(results: dict, path: str | Path) -> Path:
    """A PNG for the results' task: lines per method against length, or a passkey heat-map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task, by_method = next(iter(results["results"].items()))
    original = results.get("original_context")
    model_path = Path(results.get("model", "model"))
    name = model_path.parent.name if model_path.name == "model" else model_path.name
    if task == "passkey":
        figure = _passkey_heatmap(plt, by_method, name)
    elif task == "ruler":
        figure = _ruler_figure(plt, by_method, name, original)
    elif task == "ppl":
        figure, axis = plt.subplots(figsize=(7, 4.5), layout="constrained")
        for method, rows in by_method.items():
            lengths = sorted(int(k) for k in rows)
            axis.plot(
                lengths,
                [rows[str(k)]["ppl"] if str(k) in rows else rows[k]["ppl"] for k in lengths],
                marker="o",
                label=method,
            )
        _length_axis(axis, {int(k) for rows in by_method.values() for k in rows})
        values = [row["ppl"] for rows in by_method.values() for row in rows.values()]
        if max(values) / min(values) > 5:  # a collapse next to a flat line: log scale keeps both readable
            from matplotlib.ticker import ScalarFormatter

            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.set_xlabel("context length (tokens)")
        axis.set_ylabel("perplexity on the same scored tokens")
        _original_line(axis, original)
        axis.set_title(f"{name}: perplexity vs context length")
        axis.legend()
    else:
        metrics = [m for m in _metrics(task, by_method) if "accuracy" in m or "cosine" in m or m == "kl"] or _metrics(
            task, by_method
        )
        figure, axes = plt.subplots(
            1, len(metrics), figsize=(4.2 * len(metrics), 4), squeeze=False, layout="constrained"
        )
        for axis, metric in zip(axes[0], metrics, strict=True):
            for method, rows in by_method.items():
                points = sorted((int(k), v[metric]) for k, v in rows.items() if str(k).isdigit() and metric in v)
                if points:
                    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
            _length_axis(axis, {int(k) for rows in by_method.values() for k in rows if str(k).isdigit()})
            axis.set_xlabel("length (tokens)")
            axis.set_ylabel(metric)
            axis.set_title(metric)
            _original_line(axis, original)
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right center", fontsize=8)
        figure.suptitle(f"{name}: {task} vs length")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _length_axis(axis, lengths) -> None:
    from matplotlib.ticker import NullFormatter

    axis.set_xscale("log", base=2)
    axis.set_xticks(sorted(lengths), [str(x) for x in sorted(lengths)])
    axis.xaxis.set_minor_formatter(NullFormatter())


def _original_line(axis, original) -> None:
    if original:
        axis.axvline(original, color="grey", linestyle="--", linewidth=1)
        axis.annotate(
            "original window",
            (original, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=8,
            color="grey",
            ha="right",
        )


def _ruler_figure(plt, by_method: dict, name: str, original):
    """The average against length with its 95% band per method, then a subtask x length heat-map per method;
    panels in rows of at most RULER_COLUMNS."""
    methods = list(by_method)
    columns = min(RULER_COLUMNS, 1 + len(methods))
    rows_of_panels = -(-(1 + len(methods)) // columns)
    figure, grid_of_axes = plt.subplots(
        rows_of_panels, columns, figsize=(4.5 * columns, 4.5 * rows_of_panels), squeeze=False, layout="constrained"
    )
    panels = list(grid_of_axes.flat)
    for unused in panels[1 + len(methods) :]:
        unused.set_axis_off()
    axis = panels[0]
    for index, (method, rows) in enumerate(by_method.items()):
        lengths = sorted(rows, key=int)
        dodge = 2 ** (RULER_DODGE * (index - (len(methods) - 1) / 2))  # methods side by side at each length
        x = [int(n) * dodge for n in lengths]
        averages = [rows[n]["average"] for n in lengths]
        (line,) = axis.plot(x, averages, marker="o", label=method)
        if all("ci95" in rows[n] for n in lengths):
            low, high = [rows[n]["ci95"][0] for n in lengths], [rows[n]["ci95"][1] for n in lengths]
            axis.fill_between(x, low, high, alpha=0.2, color=line.get_color())
            if len(x) == 1:  # a band needs two lengths: one length gets an error bar
                axis.errorbar(
                    x,
                    averages,
                    yerr=[[averages[0] - low[0]], [high[0] - averages[0]]],
                    capsize=4,
                    color=line.get_color(),
                )
    _length_axis(axis, {int(n) for rows in by_method.values() for n in rows})
    axis.set_ylim(0, 100)
    axis.set_xlabel("prompt length (tokens)")
    axis.set_ylabel("average accuracy (%), 95% band")
    _original_line(axis, original)
    axis.legend(fontsize=8)
    axis.set_title("average over subtasks")
    for axis, method in zip(panels[1 : 1 + len(methods)], methods, strict=True):
        rows = by_method[method]
        lengths = sorted(rows, key=int)
        names = list(dict.fromkeys(t for row in rows.values() for t in row.get("tasks", {})))
        grid = [[rows[n].get("tasks", {}).get(t, {}).get("accuracy", float("nan")) for n in lengths] for t in names]
        image = axis.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        axis.set_xticks(range(len(lengths)), lengths, rotation=45)
        axis.set_yticks(range(len(names)), names, fontsize=8)
        _cell_labels(axis, [[v / 100 for v in row] for row in grid], [[f"{v:.0f}" for v in row] for row in grid])
        axis.set_title(method)
    figure.colorbar(image, ax=panels[len(methods)], label="accuracy (%)")
    figure.suptitle(f"{name}: RULER subtasks vs length")
    return figure


def _passkey_heatmap(plt, by_method: dict, name: str):
    """One method: depth x length. Several: method x length, accuracy pooled over depths, trials shown."""
    if len(by_method) > 1:
        return _passkey_methods_heatmap(plt, by_method, name)
    method, rows = next(iter(by_method.items()))
    lengths = sorted(rows, key=int)
    depths = sorted({depth for row in rows.values() for depth in row["depths"]}, key=float)
    grid = [[rows[length]["depths"].get(depth, float("nan")) for length in lengths] for depth in depths]
    figure, axis = plt.subplots(figsize=(max(4.5, 1.1 * len(lengths) + 2.5), 3.8), layout="constrained")
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
    axis.set_xticks(range(len(lengths)), [str(x) for x in lengths], rotation=45)
    axis.set_yticks(range(len(depths)), depths)
    axis.set_xlabel("prompt length (tokens)")
    axis.set_ylabel("depth of the key (fraction)")
    _cell_labels(axis, grid, [[f"{v:.0%}" for v in row] for row in grid])
    figure.colorbar(image, ax=axis, label="passkey accuracy")
    axis.set_title(f"{name}: passkey retrieval ({method})", fontsize=10)
    return figure


def _passkey_methods_heatmap(plt, by_method: dict, name: str):
    methods = list(by_method)
    lengths = sorted({length for rows in by_method.values() for length in rows}, key=int)
    cells = [[by_method[m].get(length) for length in lengths] for m in methods]
    grid = [[cell["accuracy"] if cell else float("nan") for cell in row] for row in cells]
    labels = [[f"{c['accuracy']:.0%} of {c['trials']}" if c else "-" for c in row] for row in cells]
    figure, axis = plt.subplots(
        figsize=(max(5.0, 1.4 * len(lengths) + 3), 0.5 * len(methods) + 1.8), layout="constrained"
    )
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(lengths)), [str(x) for x in lengths])
    axis.set_yticks(range(len(methods)), methods)
    axis.set_xlabel("prompt length (tokens)")
    _cell_labels(axis, grid, labels)
    figure.colorbar(image, ax=axis, label="passkey accuracy (all depths)")
    axis.set_title(f"{name}: passkey retrieval", fontsize=10)
    return figure


def _cell_labels(axis, grid, labels) -> None:
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            axis.text(
                x,
                y,
                labels[y][x],
                ha="center",
                va="center",
                color="white" if not value >= 0.5 else "black",  # white on dark and on empty (NaN) cells
                fontsize=8,
            )
