"""What every report's figure shares: matplotlib without a display, Pm axes, protocol titles, legends, saving."""
import os

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None where matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def log_x(ax, ticks, fmt="%g"):
    """A log-scaled x axis with plain-number ticks at ``ticks`` (no 10^x labels, no minor labels)."""
    import matplotlib.ticker
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(ticks)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter(fmt))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def pm_axis(ax, pms):
    """The Lottery Ticket figures' x axis: log Pm (%), falling to the right, a plain tick at every level."""
    ticks = sorted({float(f"{p:.3g}") for p in pms})
    log_x(ax, ticks)
    ax.set_xlim(max(ticks) * 1.15, min(ticks) / 1.15)         # inverted: 100 at the left
    if len(ticks) > 8:
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_xlabel("percent of weights remaining, Pm (%)")


def protocol(iterations, paper_iterations, trials=None, what="iterations per run"):
    """'quick protocol: 10,000 iterations per run (paper: 50,000), 2 trials', or 'paper's protocol: ...'."""
    if iterations == paper_iterations:
        text = f"paper's protocol: {iterations:,} {what}"
    else:
        text = f"quick protocol: {iterations:,} {what} (paper: {paper_iterations:,})"
    return text if trials is None else f"{text}, {trials} trial{'s' if trials != 1 else ''}"


def spread(trials, what="trials"):
    """What an error bar spans, for the legend's title."""
    return f"error bars: min–max over {trials} {what}" if trials > 1 else f"one {what[:-1]}: no error bars"


def errorbar(ax, x, samples, scale=1.0, **kw):
    """Mean of each sample set at x, error bars min–max; returns the line."""
    v = [np.asarray(s, dtype=float) * scale for s in samples]
    mean = np.array([s.mean() for s in v])
    err = np.array([[m - s.min() for m, s in zip(mean, v)], [s.max() - m for m, s in zip(mean, v)]])
    return ax.errorbar(x, mean, yerr=err, marker="o", ms=3, capsize=2, **kw)


def label(ax, xlabel, ylabel, title=None, legend=True):
    """Axis labels, a light grid and the legend (and a title, when given)."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    if title:
        ax.set_title(title)


SKIPPED = "plot skipped: matplotlib is not installed (pip install 'minilottery[plot]')"   # every report's line


def legend_below(fig, axes, title=None, ncol=None):
    """One legend for the whole figure, under the panels, so that it covers no curve."""
    handles, labels = {}, {}
    for ax in np.ravel(axes):
        for h, lb in zip(*ax.get_legend_handles_labels()):
            if lb not in labels:
                handles[lb], labels[lb] = h, lb
    fig.legend(list(handles.values()), list(labels), loc="lower center", title=title, fontsize=8,
               title_fontsize=8, ncol=ncol or min(len(labels), 4), frameon=False)
    rows = -(-len(labels) // (ncol or min(len(labels), 4)))
    fig.tight_layout(rect=(0, 0.03 + 0.05 * rows + (0.04 if title else 0), 1, 0.92))


def save(fig, png, layout=True):
    """Write the figure as a PNG and free it; returns the path."""
    import matplotlib.pyplot as plt
    if layout:
        fig.tight_layout()
    fig.savefig(png, dpi=120, format="png")                          # at exactly this path
    plt.close(fig)
    return png


def draw(make, path, png, log):
    """Draw a report's figure by ``make(png)`` at ``png`` (default: the experiment file's name as .png) and log
    where it went, or SKIPPED when ``make`` drew nothing; returns the PNG's path, or None."""
    png = png or os.path.splitext(path)[0] + ".png"
    if not make(png):
        log(SKIPPED)
        return None
    log(f"plot: {png}")
    return png
