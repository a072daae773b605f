"""Charts the render server draws once at start-up, before forking any job.

A forked job inherits the server's caches (font lookups, loaded font files, the mathtext
parser, colormaps, lazily imported modules) but every cache it fills itself dies with it.
So whatever a typical chart needs the first time is paid in *every* job unless the server
has already paid it. These snippets exercise the common code paths of chart scripts:
plot kinds, font weights, styles and sizes, mathtext, legends, colorbars, polar and 3D
axes, grids and layout engines.
"""

WARMUP_SNIPPETS = (
    """
fig, axes = plt.subplots(2, 2, figsize=(8, 6))
axes[0, 0].bar(["a", "b", "c"], [1, 3, 2], color=["#1f77b4", "tab:orange", "green"], label="bars", edgecolor="black")
axes[0, 0].barh([1, 2], [2, 1], hatch="//")
axes[0, 0].set_title("Bold title", fontsize=14, fontweight="bold")
axes[0, 0].set_xlabel("x label", fontsize=12)
axes[0, 0].set_ylabel("y label (units)", fontsize=10, style="italic")
axes[0, 0].legend(loc="upper left", fontsize=9, title="Legend", frameon=True)
axes[0, 1].plot([1, 2, 3], [3, 1, 2], marker="o", linestyle="--", linewidth=2, label="line")
axes[0, 1].plot([1, 2, 3], [1, 2, 3], marker="s", linestyle=":", label="other")
axes[0, 1].fill_between([1, 2, 3], [0, 1, 0], [1, 2, 1], alpha=0.3)
axes[0, 1].errorbar([1, 2, 3], [2, 2, 2], yerr=[0.1, 0.2, 0.3], fmt="^", capsize=3)
axes[0, 1].annotate("peak", xy=(2, 3), xytext=(2.5, 3.5), arrowprops=dict(arrowstyle="->"))
axes[0, 1].text(1, 1, r"$\\alpha^2 + \\beta_i$", fontsize=11)
axes[0, 1].grid(True, linestyle="--", alpha=0.5)
axes[0, 1].legend(loc="best")
axes[1, 0].scatter(np.arange(10), np.arange(10) ** 0.5, c=np.arange(10), cmap="viridis", s=40, alpha=0.7)
axes[1, 0].hist(np.linspace(0, 1, 50), bins=10, color="skyblue", edgecolor="white")
axes[1, 0].axhline(0.5, color="red", linestyle="--")
axes[1, 0].axvline(0.5, color="gray")
axes[1, 0].set_xticks([0, 5, 10])
axes[1, 0].set_xticklabels(["zero", "five", "ten"], rotation=45, ha="right")
im = axes[1, 1].imshow(np.arange(16).reshape(4, 4), cmap="coolwarm")
fig.colorbar(im, ax=axes[1, 1], label="value")
for i in range(4):
    axes[1, 1].text(i, i, str(i), ha="center", va="center", color="white", fontsize=8)
fig.suptitle("Suptitle", fontsize=16)
plt.tight_layout()
""",
    """
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
ax1.pie([3, 2, 1], labels=["a", "b", "c"], autopct="%1.1f%%", startangle=90, colors=["#ff9999", "#66b3ff", "#99ff99"])
ax1.add_artist(plt.Circle((0, 0), 0.6, color="white"))
ax2.boxplot([np.arange(10), np.arange(5, 15)], patch_artist=True)
ax2.violinplot([np.arange(10.0), np.arange(3.0, 9.0)], showmedians=True)
ax2.stackplot([1, 2, 3], [1, 2, 3], [2, 1, 2], labels=["s1", "s2"])
ax2.set_yscale("log")
ax2.set_title("serif", family="serif")
ax2.set_xlabel("monospace", family="monospace", fontsize=8)
fig.legend(loc="lower center", ncol=2)
fig.subplots_adjust(bottom=0.2)
""",
    """
fig = plt.figure(figsize=(8, 4), layout="constrained")
gs = fig.add_gridspec(1, 3)
ax = fig.add_subplot(gs[0, 0], projection="polar")
theta = np.linspace(0, 2 * np.pi, 6)
ax.plot(theta, [1, 2, 3, 2, 1, 1], color="purple")
ax.fill(theta, [1, 2, 3, 2, 1, 1], alpha=0.25)
ax.set_xticks(theta[:-1])
ax.set_xticklabels(["a", "b", "c", "d", "e"])
ax3 = fig.add_subplot(gs[0, 1], projection="3d")
X, Y = np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8))
ax3.plot_surface(X, Y, X * Y, cmap="viridis")
ax3.scatter([0, 1], [0, 1], [0, 1], color="red")
ax3.bar3d([0], [0], [0], 0.5, 0.5, 0.5)
ax3.set_zlabel("z")
ax4 = fig.add_subplot(gs[0, 2])
cs = ax4.contourf(X, Y, X ** 2 + Y ** 2, levels=5, cmap="Blues")
ax4.contour(X, Y, X ** 2 + Y ** 2, levels=3, colors="k")
ax4.quiver([0, 1], [0, 1], [1, 0], [0, 1])
ax4.pcolor(np.arange(4).reshape(2, 2), alpha=0.1)
fig.colorbar(cs, ax=ax4, orientation="horizontal")
""",
)


def warm_up() -> None:
    """Hand every snippet's figure over and draw it once, as a job's runner and drawer do
    (trusted code, in the server, before any job)."""
    import io
    import warnings

    import matplotlib.pyplot as plt
    import numpy as np

    from renderers import execute, handover

    namespace = {"plt": plt, "np": np}
    for snippet in WARMUP_SNIPPETS:
        # Best effort: a snippet that an older or newer matplotlib rejects only warms less.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(snippet, "<warmup>", "exec"), dict(namespace))
                for num in plt.get_fignums():
                    blob, _ = handover.pack_handover(plt.figure(num), [], [])
                    execute.draw_figure(handover.load_handover(blob)["figure"])
        except Exception:  # noqa: BLE001
            pass
        plt.close("all")
    try:  # seaborn and pandas plotting have their own first-use costs
        import pandas as pd
        import seaborn as sns

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = pd.DataFrame({"x": ["a", "b", "a", "b"], "y": [1, 2, 3, 4]})
            fig, ax = plt.subplots()
            sns.barplot(data=df, x="x", y="y", ax=ax)
            df.plot(kind="line", ax=ax)
            fig.savefig(io.BytesIO(), format="png")
        plt.close("all")
    except Exception:  # noqa: BLE001 - warm-up is best effort
        plt.close("all")
