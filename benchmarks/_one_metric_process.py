"""One process of the baseline in eval_bench.py: what ChartMimic runs per metric per script.

    python _one_metric_process.py METRIC SCRIPT OUT.json

Imports what the original evaluator's prefix for that metric imports, installs that
metric's hooks, executes the script, saves the figure as PDF (the original's scripts end
with plt.savefig("<name>.pdf")) and writes the metric's raw output.
"""

import io
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

metric, script, out = sys.argv[1], sys.argv[2], sys.argv[3]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if metric in ("type", "color"):
    import inspect  # noqa: F401,E402

    import matplotlib_venn  # noqa: F401,E402
    import networkx  # noqa: F401,E402
    import squarify  # noqa: F401,E402
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401,E402
if metric == "text":
    from matplotlib.backends.backend_pdf import RendererPdf  # noqa: E402

    texts = []
    original = RendererPdf.draw_text

    def draw_text(self, gc, x, y, s, *args, **kwargs):
        texts.append(s)
        return original(self, gc, x, y, s, *args, **kwargs)

    RendererPdf.draw_text = draw_text
else:
    from renderers import instrument, trace, visibility  # noqa: E402,F401 - visibility hooks into instrument

    instrument.install()

code = Path(script).read_text()
try:
    exec(compile(code, script, "exec"), {"__name__": "__main__"})
except Exception:  # the original wraps the metric runs in try/except too
    pass
fig = plt.gcf()
if metric == "text":
    for ax in fig.get_axes():
        ax.set_xticks([])
        ax.set_yticks([])
fig.savefig(io.BytesIO(), format="pdf")
if metric == "text":
    result = {"texts": texts}
elif metric == "type":
    result = {"types": dict(instrument.RECORDS.type_counts)}
elif metric == "color":
    result = {"colors": instrument.final_colors()}
else:
    result = {"layout": trace._layout(fig)}
Path(out).write_text(json.dumps(result))
