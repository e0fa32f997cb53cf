"""What every report's figure shares: matplotlib without a display, labelled axes, saving."""


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None where matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def log_x(ax, ticks):
    """A log-scaled x axis with plain-number ticks at ``ticks`` (no 10^x labels, no minor labels)."""
    import matplotlib.ticker
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(ticks)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def label(ax, xlabel, ylabel, title=None):
    """Axis labels, a light grid and the legend (and a title, when given)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)


def save(fig, png):
    """Write the figure as a PNG and free it; returns the path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png
